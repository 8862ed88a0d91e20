// bench/boot_to_ready: how fast a worker is ready, next to the floor, in one run.
//
//   worker:  Machine::boot (libvirt define+start) until sshd accepts the per-boot key
//   floor:   the same kernel booting a busybox initramfs to userspace with plain QEMU
//
// Prints a table with medians of N runs (default 5) and the ratio worker/floor (target <= 2
// under TCG), plus image build times (cached, and cold with --cold) and sizes. Run it through
// scripts/run-vm-test, which runs it as a normal user with qemu:///session.
#include "image/builder.hpp"
#include "image/cache.hpp"
#include "image/recipe.hpp"
#include "proc/process.hpp"
#include "spec/units.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;
using namespace contractor;
using Clock = std::chrono::steady_clock;

namespace {

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

std::string list(const std::vector<double>& values) {
    std::ostringstream out;
    for (double value : values) {
        out << (out.tellp() > 0 ? " " : "") << std::fixed;
        out.precision(2);
        out << value;
    }
    return out.str();
}

double seconds_since(Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
}

bool file_contains(const fs::path& file, const std::string& text) {
    std::ifstream in(file);
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    return content.find(text) != std::string::npos;
}

// A busybox initramfs whose /init announces itself on the console and powers off.
fs::path make_floor_initrd(const fs::path& directory) {
    const fs::path root = directory / "floor-root";
    fs::create_directories(root / "bin");
    fs::create_directories(root / "dev");
    fs::create_directories(root / "proc");
    fs::copy_file("/bin/busybox", root / "bin" / "busybox", fs::copy_options::overwrite_existing);
    std::ofstream(root / "init") << "#!/bin/busybox sh\n"
                                    "/bin/busybox mount -t devtmpfs devtmpfs /dev\n"
                                    "/bin/busybox mount -t proc proc /proc\n"
                                    "echo 'floor: ready' > /dev/console\n"
                                    "echo o > /proc/sysrq-trigger\n"
                                    "/bin/busybox sleep 60\n";
    fs::permissions(root / "init", fs::perms::owner_all | fs::perms::group_read |
                                       fs::perms::group_exec | fs::perms::others_read |
                                       fs::perms::others_exec);
    const fs::path initrd = directory / "floor.cpio";
    proc::run_checked({"sh", "-c",
                       "cd '" + root.string() + "' && find . | cpio --quiet -o -H newc > '" +
                           initrd.string() + "'"});
    return initrd;
}

double floor_boot(const fs::path& kernel, const fs::path& initrd, const fs::path& directory,
                  virt::Accel accel) {
    const fs::path console = directory / "floor-console.log";
    fs::remove(console);
    const auto start = Clock::now();
    proc::BackgroundProcess qemu(
        {"qemu-system-x86_64",
         "-machine",
         std::string("pc,accel=") + (accel == virt::Accel::kvm ? "kvm" : "tcg"),
         "-m",
         "1024",
         "-smp",
         "1",
         "-kernel",
         kernel.string(),
         "-initrd",
         initrd.string(),
         "-append",
         "console=ttyS0 quiet",
         "-serial",
         "file:" + console.string(),
         "-display",
         "none",
         "-monitor",
         "none",
         "-nic",
         "none"},
        directory / "floor-qemu.log");
    while (!file_contains(console, "floor: ready")) {
        if (seconds_since(start) > 120 || !qemu.running()) {
            throw std::runtime_error("the floor VM did not reach userspace");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return seconds_since(start);
}

} // namespace

int main(int argc, char** argv) {
    int runs = 5;
    bool cold = false;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--cold") == 0) {
            cold = true;
        } else if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = std::stoi(argv[++i]);
        }
    }
    try {
        virt::silence_libvirt_errors();
        const auto accel = virt::choose_accel(virt::AccelRequest::automatic);
        std::cerr << "bench: " << accel.reason << "\n";
        const auto recipe = image::load_recipe(image::recipes_directory(), "worker");
        const auto no_steps = [](const std::string&, double) {
        };

        double cold_seconds = -1;
        if (cold) {
            const fs::path scratch =
                fs::temp_directory_path() / ("contractor-bench-cache-" + std::to_string(getpid()));
            const image::ImageCache cold_cache(scratch);
            cold_seconds = image::build_image(recipe, {}, cold_cache, no_steps).seconds.count();
            fs::remove_all(scratch);
        }
        const image::ImageCache cache(image::ImageCache::default_root());
        image::build_image(recipe, {}, cache, no_steps); // make sure it exists
        const auto cached = image::build_image(recipe, {}, cache, no_steps);
        const auto& entry = cached.image;

        const fs::path work = cache.root().parent_path() / ("bench-" + std::to_string(getpid()));
        fs::create_directories(work);
        // Removed on every path out, failures included.
        const std::unique_ptr<const fs::path, void (*)(const fs::path*)> work_guard(
            &work, [](const fs::path* path) {
                std::error_code ignored;
                fs::remove_all(*path, ignored);
            });
        const fs::path floor_initrd = make_floor_initrd(work);

        virt::Connection connection(virt::default_uri());
        std::vector<double> worker;
        std::vector<double> floor;
        for (int run = 0; run < runs; ++run) {
            // Alternating, so that a noisy neighbour slows both sides alike.
            floor.push_back(floor_boot(entry.kernel(), floor_initrd, work, accel.accel));
            vm::BootRequest request;
            request.image = entry.disk();
            request.accel = accel.accel;
            request.runs_directory = work / "runs";
            auto machine = vm::Machine::boot(connection, cache, request);
            machine->wait_until_ready(std::chrono::seconds(300));
            worker.push_back(
                std::chrono::duration<double>(Clock::now() - machine->started_at()).count());
            std::cerr << "bench: run " << run + 1 << ": floor " << floor.back() << " s, worker "
                      << worker.back() << " s\n";
        }
        const double ratio = median(worker) / median(floor);
        std::printf("%-36s %10s   %s\n", "metric", "median", "runs");
        std::printf("%-36s %10.2f   %s\n", "worker boot-to-ready (s)", median(worker),
                    list(worker).c_str());
        std::printf("%-36s %10.2f   %s\n", "floor: kernel + busybox initrd (s)", median(floor),
                    list(floor).c_str());
        std::printf("%-36s %10.2f   %s\n", "ratio worker / floor (target <= 2)", ratio,
                    accel.accel == virt::Accel::kvm ? "kvm" : "tcg");
        if (cold_seconds >= 0) {
            std::printf("%-36s %10.1f\n", "image build, cold (s)", cold_seconds);
        }
        std::printf("%-36s %10.3f\n", "image build, cached (s)", cached.seconds.count());
        std::printf("%-36s %10s\n", "worker image on disk",
                    spec::format_size(entry.size_on_disk()).c_str());
        std::printf("%-36s %10s\n", "  of which kernel",
                    spec::format_size(fs::file_size(entry.kernel())).c_str());
        std::printf("%-36s %10s\n", "  of which initrd",
                    spec::format_size(fs::file_size(entry.initrd())).c_str());
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "bench: error: " << error.what() << "\n";
        return 1;
    }
}

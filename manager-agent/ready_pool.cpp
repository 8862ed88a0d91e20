#include "manager-agent/ready_pool.hpp"

#include "image/cache.hpp"
#include "image/sha256.hpp"
#include "manager-agent/layers.hpp"
#include "manager-agent/worker_session.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/private_file.hpp"
#include "util/text.hpp"
#include "virt/libvirt.hpp"
#include "vm/lease.hpp"

#include <fcntl.h>
#include <fstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#ifndef CONTRACTOR_VERSION
#define CONTRACTOR_VERSION "unknown"
#endif

namespace contractor::manager {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// How often the keeper looks whether its worker was claimed, stopped or idle too long.
constexpr std::chrono::milliseconds keeper_tick(500);

// The key recorded beside the handover record, so that a claimant need not parse the record.
constexpr const char* ready_key_file = "ready.key";

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    std::string text;
    std::getline(in, text);
    return text;
}

// Starts `arguments` as a process of its own session, with no terminal and /dev/null as its
// standard streams, not a child of this one: it outlives this process and the SSH session or
// CLI that started it.
void spawn_detached(const std::vector<std::string>& arguments) {
    std::vector<char*> argv;
    for (const auto& argument : arguments) {
        argv.push_back(const_cast<char*>(argument.c_str())); // NOLINT: execv's signature
    }
    argv.push_back(nullptr);
    const pid_t child = ::fork();
    if (child < 0) {
        throw InfrastructureError("cannot start the ready worker's keeper: fork failed");
    }
    if (child == 0) {
        ::setsid();
        if (::fork() != 0) {
            ::_exit(0);
        }
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::close_range(3, ~0U, 0);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
}

// Whether a worker for `key` already waits in `runs` (one per key is enough).
bool one_waits(const fs::path& runs, const std::string& key) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(runs, error)) {
        if (fs::exists(entry.path() / ready_record_file) &&
            read_text(entry.path() / ready_key_file) == key) {
            return true;
        }
    }
    return false;
}

} // namespace

std::string ready_key(const vm::BootRequest& request, const image::Layer* layer) {
    const ordered_json inputs = {
        {"image", request.cached_image
                      ? request.cached_image->name + "-" + request.cached_image->digest
                      : request.image.string()},
        {"layer", layer ? layer->key + ":" + layer->disk_sha256 : std::string()},
        {"vcpus", request.vcpus},
        {"memory", request.memory_bytes},
        {"disk", request.disk_bytes},
        {"accel", std::string(virt::to_string(request.accel))},
        {"clock", request.instruction_clock_shift ? ordered_json(*request.instruction_clock_shift)
                                                  : ordered_json(nullptr)},
        {"contractor", CONTRACTOR_VERSION}};
    image::Sha256 hash;
    hash.update(inputs.dump());
    return hash.hex_digest();
}

std::optional<fs::path> claim_ready_worker(const fs::path& runs, const std::string& key) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(runs, error)) {
        const fs::path run = entry.path();
        if (read_text(run / ready_key_file) != key) {
            continue;
        }
        // Only one rename of the record succeeds: this build's, another's or the keeper's.
        if (::rename((run / ready_record_file).c_str(), (run / claimed_record_file).c_str()) != 0) {
            continue;
        }
        // At once, while the keeper still holds the ready lease (it notices the claim on its
        // next tick and ends): the worker is never without a live holder.
        vm::write_lease(run, vm::lease_for_this_process(vm::LeaseKind::build));
        fs::remove(run / ready_key_file, error);
        return run;
    }
    return std::nullopt;
}

void start_ready_worker(const protocol::Job& job, std::chrono::seconds idle) {
    const fs::path runs = image::ImageCache::default_root().parent_path() / "runs";
    fs::create_directories(runs);
    const fs::path request = runs / (".ready-request-" + util::random_hex(8) + ".json");
    ordered_json record = protocol::job_to_json(job);
    record["idle_seconds"] = idle.count();
    util::write_private_file(request, record.dump());
    try {
        spawn_detached(
            {fs::read_symlink("/proc/self/exe").string(), "keep-ready", request.string()});
    } catch (...) {
        // The keeper removes the request once it read it; no keeper, no one else would.
        std::error_code ignored;
        fs::remove(request, ignored);
        throw;
    }
}

int keep_ready_worker(const fs::path& request_file) {
    util::install_cancel_handlers();
    std::ifstream in(request_file);
    const auto record = nlohmann::json::parse(in, nullptr, false);
    std::error_code error;
    fs::remove(request_file, error);
    if (!record.is_object()) {
        return 2;
    }
    const protocol::Job job = protocol::job_from_json(record);
    const std::chrono::seconds idle(record.value("idle_seconds", 900));

    const WorkerImage image = resolve_worker_image(job);
    // The layer the next build of this job starts from: the one its build just used or saved.
    std::optional<image::Layer> layer;
    if (const auto inputs = layer_inputs(job, image)) {
        layer = image::LayerStore(image::LayerStore::default_root())
                    .find(image::layer_key(*inputs), std::chrono::seconds(job.layers.max_age));
    }
    const vm::BootRequest request = worker_boot_request(job, image, layer ? &*layer : nullptr);
    const std::string key = ready_key(request, layer ? &*layer : nullptr);
    if (one_waits(request.runs_directory, key)) {
        return 0;
    }
    // As before every boot in the manager (the build that takes this worker does not hash
    // them again); a changed file throws, and nothing boots.
    check_boot_files(image, layer ? &*layer : nullptr, {});
    virt::Connection libvirt(virt::default_uri());
    const image::ImageCache cache(image::ImageCache::default_root());
    auto machine = vm::Machine::boot(libvirt, cache, request);
    const fs::path run = machine->run_directory();
    vm::write_lease(run, vm::lease_for_this_process(vm::LeaseKind::ready));
    util::write_private_file(run / ready_key_file, key + "\n");
    machine->hand_over(ready_record_file);
    machine.reset(); // handed over: the VM stays

    const auto deadline = std::chrono::steady_clock::now() + idle;
    for (;;) {
        std::this_thread::sleep_for(keeper_tick);
        if (!fs::exists(run / ready_record_file)) {
            return 0; // claimed: the build's now
        }
        auto domain = libvirt.find(run.filename().string());
        const bool stopped = !domain || !domain->is_active();
        if (!stopped && !util::cancel_requested() && std::chrono::steady_clock::now() < deadline) {
            continue;
        }
        // Idle too long, the worker stopped by itself, or the keeper was told to end (SIGTERM:
        // `kill KEEPER` removes a ready worker): take it back, unless a build claimed it this
        // very moment (then its rename won and this one fails), and remove it.
        if (::rename((run / ready_record_file).c_str(), (run / "reaped.json").c_str()) != 0) {
            return 0;
        }
        if (domain) {
            domain->destroy();
            domain->undefine();
        }
        fs::remove_all(run, error);
        return 0;
    }
}

} // namespace contractor::manager

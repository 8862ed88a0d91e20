#include "cli/command.hpp"
#include "image/builder.hpp"
#include "image/cache.hpp"
#include "image/recipe.hpp"
#include "spec/config.hpp"
#include "spec/units.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <unistd.h>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

struct ImageOptions {
    std::string name;
    std::string output;
    std::vector<std::string> includes;
    std::string image;
    std::string user = "worker";
    std::string accel;
    std::string memory = "1GiB";
    unsigned vcpus = 1;
    unsigned timeout_seconds = 600;
    bool keep = false;
    std::vector<std::string> command;
};

std::string age(fs::file_time_type created) {
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(fs::file_time_type::clock::now() - created)
            .count();
    return spec::format_duration(static_cast<std::uint64_t>(std::max<long long>(seconds, 0)));
}

int run_build(const ImageOptions& options, Context& context) {
    const image::Recipe recipe = image::load_recipe(image::recipes_directory(), options.name);
    const image::ImageCache cache(image::ImageCache::default_root());
    const bool tty = isatty(STDERR_FILENO) == 1;
    context.err << "contractor: image " << recipe.name << ": digest "
                << image::recipe_digest(recipe, options.includes) << std::endl;
    util::debug("image", "recipe " + recipe.file.string());
    const auto report = image::build_image(
        recipe, options.includes, cache, [&](const std::string& step, double seconds) {
            // On a terminal the step shows while it runs and is ticked off in place; in a log,
            // one line per finished step.
            if (seconds < 0) {
                if (tty) {
                    context.err << "  ... " << step << std::flush;
                }
                return;
            }
            context.err << (tty ? "\r  done: " : "contractor: image: ") << step << " ("
                        << std::fixed << std::setprecision(1) << seconds << " s)" << std::endl;
        });
    context.err << "contractor: image " << recipe.name << " "
                << (report.from_cache ? "was already cached" : "built") << " in " << std::fixed
                << std::setprecision(1) << report.seconds.count()
                << " s: " << report.image.disk().string() << std::endl;
    if (!options.output.empty()) {
        fs::copy_file(report.image.disk(), options.output, fs::copy_options::overwrite_existing);
        context.err << "contractor: image copied to " << options.output << std::endl;
    }
    context.out << report.image.disk().string() << '\n';
    return 0;
}

int run_list(Context& context) {
    const image::ImageCache cache(image::ImageCache::default_root());
    const auto images = cache.list();
    context.out << std::left << std::setw(10) << "NAME" << std::setw(18) << "DIGEST"
                << std::setw(12) << "SIZE"
                << "AGE\n";
    for (const auto& entry : images) {
        context.out << std::left << std::setw(10) << entry.name << std::setw(18) << entry.digest
                    << std::setw(12) << spec::format_size(entry.size_on_disk())
                    << age(entry.created) << '\n';
    }
    if (images.empty()) {
        context.err << "contractor: no cached images in " << cache.root().string()
                    << " (build one with 'contractor image build worker')" << std::endl;
    }
    return 0;
}

int run_remove(const ImageOptions& options, Context& context) {
    image::ImageCache cache(image::ImageCache::default_root());
    const std::size_t removed = cache.remove(options.name);
    if (removed == 0) {
        throw UsageError("no cached image matches '" + options.name + "'",
                         "see 'contractor image list'");
    }
    context.err << "contractor: removed " << removed << " image(s)" << std::endl;
    return 0;
}

int run_boot(const ImageOptions& options, Context& context) {
    // The user's input is checked before anything is connected or started.
    const std::uint64_t memory_bytes = spec::parse_size(options.memory);
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    const auto accel = virt::choose_accel(
        virt::parse_accel_request(options.accel.empty() ? config.accel : options.accel));
    if (accel.accel == virt::Accel::tcg) {
        context.err << "contractor: " << accel.reason << std::endl;
    }
    const image::ImageCache cache(image::ImageCache::default_root());
    virt::Connection connection(virt::default_uri());
    vm::BootRequest request;
    request.image = options.image;
    request.user = options.user;
    request.accel = accel.accel;
    request.vcpus = options.vcpus;
    request.memory_bytes = memory_bytes;
    request.runs_directory = cache.root().parent_path() / "runs";
    const auto start = std::chrono::steady_clock::now();
    auto machine = vm::Machine::boot(connection, cache, request);
    context.err << "contractor: booting " << machine->name() << " ("
                << (machine->boots_direct_kernel() ? "direct kernel" : "firmware") << ")"
                << std::endl;
    machine->wait_until_ready(std::chrono::seconds(options.timeout_seconds));
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    context.err << "contractor: " << machine->name() << " accepts SSH after " << std::fixed
                << std::setprecision(1) << seconds << " s" << std::endl;
    std::string command;
    for (const auto& word : options.command) {
        command += (command.empty() ? "" : " ") + word;
    }
    if (command.empty()) {
        command = "true";
    }
    ssh::Session session(machine->endpoint(), std::chrono::seconds(30));
    const auto result = session.run(command);
    context.out << result.output << std::flush;
    if (options.keep) {
        machine->keep();
        context.err << "contractor: kept " << machine->name() << " running" << std::endl;
    }
    return result.exit_status < 0 ? 4 : result.exit_status;
}

} // namespace

void add_image_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<ImageOptions>();
    CLI::App* image = parent.add_subcommand("image", "Build, list and remove VM images");
    image->require_subcommand(1);

    CLI::App* build = image->add_subcommand(
        "build", "Build an image from its recipe (cached: nothing changed, nothing rebuilt)");
    build->add_option("NAME", options->name, "worker, worker-toolchain or manager")->required();
    build->add_option("--output", options->output, "also copy the disk image to this file");
    build->add_option("--include", options->includes, "an extra Debian package (repeatable)");
    build->callback([options, &action] {
        action = [options](Context& context) {
            return run_build(*options, context);
        };
    });

    CLI::App* list = image->add_subcommand("list", "Show the cached images");
    list->callback([&action] {
        action = [](Context& context) {
            return run_list(context);
        };
    });

    CLI::App* remove = image->add_subcommand("rm", "Remove cached images by name or digest");
    remove->add_option("NAME", options->name, "an image name or digest prefix")->required();
    remove->callback([options, &action] {
        action = [options](Context& context) {
            return run_remove(*options, context);
        };
    });

    CLI::App* boot = image->add_subcommand(
        "boot", "Boot an image with fresh credentials, run a command over SSH, destroy it");
    boot->add_option("IMAGE", options->image, "a disk image file")->required();
    boot->add_option("--user", options->user, "the account to log into (default worker)");
    boot->add_option("--accel", options->accel, "auto, kvm or tcg (default: config, else auto)");
    boot->add_option("--memory", options->memory, "RAM (default 1GiB)");
    boot->add_option("--cpus", options->vcpus, "virtual CPUs (default 1)");
    boot->add_option("--timeout", options->timeout_seconds, "seconds to wait for SSH");
    boot->add_flag("--keep", options->keep, "leave the VM running afterwards");
    boot->add_option("COMMAND", options->command, "command to run (after --)");
    boot->callback([options, &action] {
        action = [options](Context& context) {
            return run_boot(*options, context);
        };
    });
}

} // namespace contractor::cli

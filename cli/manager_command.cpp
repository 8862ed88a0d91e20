#include "cli/command.hpp"
#include "cli/manager_connection.hpp"
#include "image/cache.hpp"
#include "spec/units.hpp"
#include "ssh/keys.hpp"
#include "util/error.hpp"
#include "virt/libvirt.hpp"
#include "vm/leftovers.hpp"

#include <nlohmann/json.hpp>

#include <ctime>
#include <functional>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>

namespace contractor::cli {
namespace {

struct ManagerOptions {
    std::string connect;
    std::string accel;
    bool json = false;
};

std::string mib(std::uint64_t bytes) {
    std::ostringstream out;
    if (bytes >= (10ULL << 30)) {
        out << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / (1ULL << 30)
            << " GiB";
    } else {
        out << (bytes >> 20) << " MiB";
    }
    return out.str();
}

std::string local_time(std::int64_t unix_seconds) {
    const std::time_t time = unix_seconds;
    std::tm local{};
    localtime_r(&time, &local);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M", &local);
    return text;
}

// What the agent inside the manager says about itself (contractor-manager status), or an
// error text.
nlohmann::json inside_status(managervm::ManagerVm& manager, std::string& problem) {
    try {
        std::ostringstream quiet;
        ManagerLink link = connect_manager(manager, quiet);
        std::string output;
        if (link.chain.last().run(link.agent + " status", output) != 0) {
            problem = "the manager agent failed: " + output;
            return nullptr;
        }
        return nlohmann::json::parse(output);
    } catch (const Error& error) {
        problem = error.what();
    } catch (const nlohmann::json::exception& error) {
        problem = std::string("the manager agent's answer is not JSON: ") + error.what();
    }
    return nullptr;
}

// What a worker's lease says, for the status lines.
std::string lease_text(const std::string& lease) {
    if (lease == "ready") {
        return " (ready: idle, for the next build like the last one)";
    }
    if (lease == "kept") {
        return " (kept for debugging: 'contractor gc' removes it)";
    }
    if (lease == "build") {
        return " (a build's)";
    }
    return "";
}

// Workers under this host's libvirt (direct topology): builds, kept and ready workers.
nlohmann::ordered_json host_workers() {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    try {
        virt::Connection libvirt(virt::default_uri());
        const auto runs =
            image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "runs";
        for (const auto& worker : vm::list_workers(libvirt, runs)) {
            out.push_back(
                {{"name", worker.name}, {"running", worker.running}, {"lease", worker.lease}});
        }
    } catch (const std::exception&) {
        // No session libvirt here: nothing of the direct topology runs.
    }
    return out;
}

int show_status(managervm::ManagerVm& manager, const ManagerOptions& options, Context& context) {
    const auto& settings = manager.settings();
    nlohmann::ordered_json report = {{"state", "absent"},
                                     {"libvirt_uri", settings.libvirt_uri},
                                     {"directory", settings.directory.string()}};
    const auto state = manager.created() ? manager.domain_state() : std::nullopt;
    nlohmann::json inside;
    std::string problem;
    if (manager.created()) {
        const auto& record = *manager.record();
        report["state"] = state.value_or("not defined");
        report["domain"] = record.domain;
        report["libvirt_uri"] = record.libvirt_uri;
        report["address"] = "127.0.0.1:" + std::to_string(record.ssh_port);
        report["host_key"] = ssh::fingerprint(record.host_key);
        report["image"] = record.image;
        report["created"] = record.created;
        report["started"] = record.started;
        report["cpus"] = record.cpus;
        report["memory_bytes"] = record.memory_bytes;
        report["disk_bytes"] = record.disk_bytes;
        report["host_disk_usage"] = manager.disk_usage();
        if (state == std::string("running")) {
            inside = inside_status(manager, problem);
            report["agent"] = inside.is_null() ? nlohmann::json(nullptr) : inside;
            if (!problem.empty()) {
                report["problem"] = problem;
            }
        }
    }
    const auto on_host = host_workers();
    report["host_workers"] = on_host;
    if (options.json) {
        context.out << report.dump(2) << std::endl;
        return 0;
    }
    auto& out = context.out;
    const auto line = [&out](const std::string& key, const std::string& value) {
        out << std::left << std::setw(15) << (key + ":") << value << "\n";
    };
    if (!on_host.empty()) {
        line("host workers", std::to_string(on_host.size()) + " (direct topology):");
        for (const auto& worker : on_host) {
            out << "  " << worker.value("name", "")
                << (worker.value("running", false) ? " running" : " stopped")
                << lease_text(worker.value("lease", "")) << "\n";
        }
    }
    if (!manager.created()) {
        line("manager VM", "none (the next 'contractor build' or 'contractor manager start' "
                           "creates it)");
        line("libvirt", settings.libvirt_uri);
        line("folder", settings.directory.string());
        out.flush();
        return 0;
    }
    const auto& record = *manager.record();
    line("manager VM", report["state"].get<std::string>() + " (domain " + record.domain + " on " +
                           record.libvirt_uri + ")");
    line("address", "ssh contractor@127.0.0.1 -p " + std::to_string(record.ssh_port) +
                        " (loopback only; host key " + report["host_key"].get<std::string>() +
                        ", pinned)");
    line("created", local_time(record.created) + " from image " + record.image);
    if (state == std::string("running")) {
        std::string uptime = "started " + local_time(record.started);
        if (inside.is_object()) {
            uptime = spec::format_duration(
                         static_cast<std::uint64_t>(inside.value("uptime_seconds", 0.0))) +
                     " (" + uptime + ")";
        }
        line("uptime", uptime);
    }
    std::string size = std::to_string(record.cpus) + " vCPUs, " + mib(record.memory_bytes) +
                       " RAM, " + mib(record.disk_bytes) + " disk (" + mib(manager.disk_usage()) +
                       " used on the host)";
    line("size", size);
    if (inside.is_object()) {
        const auto& memory = inside["memory"];
        const auto& disk = inside["disk"];
        line("inside", "load " + std::to_string(inside.value("load", 0.0)).substr(0, 4) + ", RAM " +
                           mib(memory.value("available", 0ULL)) + " free of " +
                           mib(memory.value("total", 0ULL)) + ", disk " +
                           (disk.is_object() ? mib(disk.value("free", 0ULL)) + " free of " +
                                                   mib(disk.value("total", 0ULL))
                                             : std::string("unknown")));
        const auto& workers = inside["workers"];
        if (workers.empty()) {
            line("workers", "none running");
        } else {
            line("workers", std::to_string(workers.size()) + ":");
            for (const auto& worker : workers) {
                std::string text = "  " + worker.value("name", "") +
                                   (worker.value("running", false) ? " running" : " stopped");
                if (worker["cpu_seconds"].is_number()) {
                    text += ", CPU " +
                            std::to_string(static_cast<long>(worker["cpu_seconds"].get<double>())) +
                            " s";
                }
                text += lease_text(worker.value("lease", ""));
                out << text << "\n";
            }
        }
        const auto& images = inside["images"];
        if (images.empty()) {
            line("worker images", "none cached");
        } else {
            line("worker images", std::to_string(images.size()) + " cached:");
            for (const auto& image : images) {
                out << "  " << image.value("name", "") << "-" << image.value("digest", "") << " ("
                    << mib(image.value("bytes", 0ULL)) << ")\n";
            }
        }
    } else if (!problem.empty()) {
        line("problem", problem);
    }
    line("folder", manager.settings().directory.string());
    out.flush();
    return 0;
}

// Adds `contractor manager NAME` with --connect; when chosen, `body` runs on the manager VM
// of the user config and --connect. Only a verb that `boots` chooses an accelerator (--accel,
// else the config's: auto probes KVM); the others never start a VM.
using ManagerBody = std::function<int(managervm::ManagerVm&, Context&)>;
CLI::App* add_verb(CLI::App* manager, const std::string& name, const std::string& description,
                   const std::shared_ptr<ManagerOptions>& options, CommandAction& action,
                   bool boots, ManagerBody body) {
    CLI::App* verb = manager->add_subcommand(name, description);
    verb->add_option("--connect", options->connect,
                     "Host libvirt URI (default: config manager.connect, else qemu:///session)");
    verb->callback([options, &action, boots, body] {
        action = [options, boots, body](Context& context) {
            const auto config = spec::load_user_config(context.config_location);
            auto vm = open_manager(config, options->connect, boots ? options->accel : "tcg");
            return body(vm, context);
        };
    });
    return verb;
}

managervm::Say say_to(Context& context) {
    return [&context](const std::string& line) {
        context.err << "contractor: " << line << std::endl;
    };
}

} // namespace

void add_manager_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<ManagerOptions>();
    CLI::App* manager = parent.add_subcommand(
        "manager", "Start, stop, inspect or remove the manager VM that runs the workers");
    manager->require_subcommand(1);

    CLI::App* start = add_verb(
        manager, "start",
        "Create the manager VM if needed, boot it and wait until its agent answers", options,
        action, true, [](managervm::ManagerVm& vm, Context& context) {
            if (vm.running()) {
                context.err << "contractor: the manager VM is already running" << std::endl;
            }
            // Connecting installs the agent; running it proves it works in there.
            ManagerLink link = connect_manager(vm, context.err);
            std::string output;
            if (link.chain.last().run(link.agent + " status", output) != 0) {
                throw InfrastructureError("the manager agent does not run in the manager VM: " +
                                              output,
                                          "'contractor manager destroy' and start again");
            }
            context.err << "contractor: the manager VM runs; its agent answers" << std::endl;
            return 0;
        });
    start->add_option("--accel", options->accel, "auto, kvm or tcg (default: config, else auto)");

    add_verb(manager, "stop", "Power the manager VM off (its disk and cached images stay)", options,
             action, false, [](managervm::ManagerVm& vm, Context& context) {
                 if (!vm.running()) {
                     context.err << "contractor: the manager VM is not running" << std::endl;
                     return 0;
                 }
                 vm.stop(std::chrono::seconds(60), say_to(context));
                 context.err << "contractor: the manager VM is stopped" << std::endl;
                 return 0;
             });

    CLI::App* status = add_verb(
        manager, "status", "Show the manager VM: state, address, uptime, workers, images, disk use",
        options, action, false, [options](managervm::ManagerVm& vm, Context& context) {
            return show_status(vm, *options, context);
        });
    status->add_flag("--json", options->json, "Print the status as JSON");

    add_verb(manager, "destroy", "Stop the manager VM and delete it, its disk and its keys",
             options, action, false, [](managervm::ManagerVm& vm, Context& context) {
                 if (!vm.created()) {
                     context.err << "contractor: there is no manager VM" << std::endl;
                     return 0;
                 }
                 vm.destroy(say_to(context));
                 return 0;
             });
}

} // namespace contractor::cli

#include "manager-agent/agent.hpp"

#include "image/cache.hpp"
#include "image/layer_store.hpp"
#include "manager-agent/inbox.hpp"
#include "manager-agent/job.hpp"
#include "manager-agent/outbox.hpp"
#include "manager-agent/ready_pool.hpp"
#include "manager-agent/status.hpp"
#include "manager-agent/worker_slots.hpp"
#include "protocol/job.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "virt/libvirt.hpp"
#include "vm/leftovers.hpp"

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace contractor::manager {
namespace {

// How long the CLI may take to send its hello and its job. It sends both at once; a CLI that
// says nothing for this long is not a CLI.
constexpr std::chrono::seconds greeting_timeout(60);

protocol::Frame expect(Inbox& inbox, const std::string& type) {
    auto frame = inbox.next(greeting_timeout);
    if (!frame) {
        throw InfrastructureError("the CLI sent no '" + type + "' message within " +
                                  std::to_string(greeting_timeout.count()) + " s");
    }
    if (frame->type() != type) {
        throw InfrastructureError("the CLI sent '" + frame->type() + "' where '" + type +
                                  "' was expected");
    }
    return std::move(*frame);
}

void remove_orphans(Outbox& outbox) {
    virt::Connection libvirt(virt::default_uri());
    const image::ImageCache cache(image::ImageCache::default_root());
    for (const auto& line : vm::remove_leftovers(libvirt, cache.root().parent_path() / "runs",
                                                 vm::Leftovers::orphaned)) {
        outbox.status("removed " + line + ", left by a killed build");
    }
}

// `gc`: right after the manager VM booted, every stopped worker; `gc all` (contractor gc):
// workers of killed jobs and kept workers.
int collect_garbage(vm::Leftovers rule) {
    try {
        virt::silence_libvirt_errors();
        virt::Connection libvirt(virt::default_uri());
        const image::ImageCache cache(image::ImageCache::default_root());
        for (const auto& line :
             vm::remove_leftovers(libvirt, cache.root().parent_path() / "runs", rule)) {
            std::cout << "removed " << line << "\n";
        }
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "contractor-manager: " << error.what() << "\n";
        return to_int(ExitCode::infrastructure);
    }
}

int serve() {
    util::install_cancel_handlers();
    // A CLI that went away must surface as a failed write (and a teardown), not kill us.
    std::signal(SIGPIPE, SIG_IGN);
    virt::silence_libvirt_errors();
    Outbox outbox(STDOUT_FILENO);
    Inbox inbox(STDIN_FILENO);
    try {
        outbox.send({{"type", "hello"},
                     {"version", protocol::protocol_version},
                     {"agent", "contractor-manager"}});
        const auto hello = expect(inbox, "hello");
        if (hello.header.value("version", 0) != protocol::protocol_version) {
            throw InfrastructureError(
                "the CLI speaks protocol version " +
                    hello.header.value("version", nlohmann::json(0)).dump() +
                    ", this manager speaks " + std::to_string(protocol::protocol_version),
                "use a contractor and contractor-manager from the same build");
        }
        protocol::Job job = protocol::job_from_json(expect(inbox, "job").header);
        const Heartbeat heartbeat(outbox);
        // Workers of jobs whose CLI or agent was killed (kill -9 leaves no chance to clean up)
        // go before this job's boots: the next build cleans up after the last.
        remove_orphans(outbox);
        {
            // At most max-workers builds at once on this side; the rest queue here, before
            // their timeout starts.
            const WorkerSlot slot(image::ImageCache::default_root().parent_path() / "runs" /
                                      ".slots",
                                  job.max_workers, outbox);
            outbox.send(to_json(run_job(job, inbox, outbox)));
        }
        if (job.pool.size > 0) {
            // The next build like this one starts without a boot. After the result: this
            // build's CLI is not kept waiting, and the new worker does not share the CPU with
            // this build's.
            try {
                start_ready_worker(job, std::chrono::seconds(job.pool.idle));
            } catch (const std::exception&) {
                // No ready worker: the next build boots its own.
            }
        }
        return 0;
    } catch (const Interrupted& interrupted) {
        // The CLI cancelled or went away; the runner has torn the worker down by now.
        try {
            outbox.send({{"type", "error"},
                         {"message", "the build was cancelled"},
                         {"exit_code", 128 + interrupted.signal()}});
        } catch (const std::exception&) {
        }
        return 128 + interrupted.signal();
    } catch (const Error& error) {
        try {
            outbox.send({{"type", "error"},
                         {"message", error.what()},
                         {"hint", error.hint()},
                         {"exit_code", to_int(error.exit_code())}});
        } catch (const std::exception&) {
        }
        return to_int(error.exit_code());
    } catch (const std::exception& error) {
        try {
            outbox.send({{"type", "error"},
                         {"message", std::string("contractor-manager failed: ") + error.what()},
                         {"exit_code", to_int(ExitCode::infrastructure)}});
        } catch (const std::exception&) {
        }
        return to_int(ExitCode::infrastructure);
    }
}

// `cache list` and `cache prune all|auto MAX-AGE MAX-BYTES|key KEY`: the provisioned layers in
// this side's store, as JSON (the CLI prints them).
int layer_cache(const std::vector<std::string>& words) {
    try {
        const image::LayerStore store(image::LayerStore::default_root());
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        if (words.size() == 1 && words[0] == "list") {
            for (const auto& layer : store.list()) {
                out.push_back(image::layer_listing(layer));
            }
        } else if (words.size() >= 2 && words[0] == "prune") {
            image::LayerPrune rule;
            if (words[1] == "all" && words.size() == 2) {
                rule.all = true;
            } else if (words[1] == "key" && words.size() == 3) {
                rule.key = words[2];
            } else if (words[1] == "auto" && words.size() == 4) {
                rule.max_age = std::chrono::seconds(std::stoull(words[2]));
                rule.max_bytes = std::stoull(words[3]);
            } else {
                std::cerr << "contractor-manager: unknown cache prune form\n";
                return 2;
            }
            for (const auto& layer : image::prune_layers(store, rule)) {
                out.push_back(image::layer_listing(layer));
            }
        } else {
            std::cerr << "usage: contractor-manager cache list | cache prune all|auto|key ...\n";
            return 2;
        }
        std::cout << out.dump() << std::endl;
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "contractor-manager: " << error.what() << "\n";
        return to_int(ExitCode::infrastructure);
    }
}

// An SSH command (nested topology) gets a user's PATH without the sbin folders, where Debian
// keeps mkfs.vfat and friends.
void add_system_folders_to_path() {
    const char* current = std::getenv("PATH");
    std::string path = current != nullptr ? current : "/usr/local/bin:/usr/bin:/bin";
    for (const char* folder : {"/usr/local/sbin", "/usr/sbin", "/sbin"}) {
        if (((":" + path + ":").find(std::string(":") + folder + ":")) == std::string::npos) {
            path += std::string(":") + folder;
        }
    }
    setenv("PATH", path.c_str(), 1);
}

} // namespace

int run(int argc, char** argv) {
    const std::string command = argc > 1 ? argv[1] : "";
    add_system_folders_to_path();
    if (command == "serve" && argc == 2) {
        return serve();
    }
    if (command == "status" && argc == 2) {
        try {
            std::cout << status_report().dump() << std::endl;
            return 0;
        } catch (const std::exception& error) {
            std::cerr << "contractor-manager: " << error.what() << "\n";
            return to_int(ExitCode::infrastructure);
        }
    }
    if (command == "gc" && argc == 2) {
        // Run by the CLI right after the manager VM booted: workers of builds that its last
        // stop or crash cut short still have their definitions and run folders on its disk.
        return collect_garbage(vm::Leftovers::not_running);
    }
    if (command == "gc" && argc == 3 && std::string(argv[2]) == "all") {
        return collect_garbage(vm::Leftovers::orphaned_and_kept);
    }
    if (command == "keep-ready" && argc == 3) {
        virt::silence_libvirt_errors();
        try {
            return keep_ready_worker(argv[2]);
        } catch (const std::exception&) {
            return to_int(ExitCode::infrastructure);
        }
    }
    if (command == "cache" && argc >= 3) {
        return layer_cache(std::vector<std::string>(argv + 2, argv + argc));
    }
    std::cerr << "usage: contractor-manager serve | status | gc [all] | cache list|prune ...\n"
                 "contractor-manager is started by contractor; it is not meant to be run by "
                 "hand.\n";
    return 2;
}

} // namespace contractor::manager

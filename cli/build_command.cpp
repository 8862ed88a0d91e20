#include "cli/build_logs.hpp"
#include "cli/build_report.hpp"
#include "cli/build_run.hpp"
#include "cli/command.hpp"
#include "cli/manager_connection.hpp"
#include "cli/manager_session.hpp"
#include "connection/local_hop.hpp"
#include "image/cache.hpp"
#include "image/disk_check.hpp"
#include "managervm/uploads.hpp"
#include "protocol/job.hpp"
#include "spec/effective.hpp"
#include "spec/spec.hpp"
#include "transfer/safe_extract.hpp"
#include "transfer/workspace_marker.hpp"
#include "util/error.hpp"
#include "util/text.hpp"
#include "virt/accel.hpp"

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <sys/stat.h>
#include <unistd.h>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

// What goes into the worker: the saved workspace (without its old src/), then the source
// tree as src/, without the `exclude` globs, and never the workspace or the worker image.
std::vector<transfer::PackSource> input_sources(const spec::EffectiveSpec& effective) {
    std::error_code error;
    if (!fs::is_directory(effective.source, error)) {
        throw UsageError("the source " + effective.source.string() + " is not a folder",
                         "set 'source' in the spec to the tree to build");
    }
    std::vector<transfer::PackSource> sources;
    if (fs::is_directory(effective.workspace, error)) {
        // The marker is contractor's note on the host, not part of the build's workspace.
        sources.push_back({effective.workspace,
                           "",
                           {},
                           {effective.workspace / "src",
                            effective.workspace / std::string(transfer::workspace_marker_name)}});
    }
    transfer::PackSource source{effective.source, "src", effective.exclude, {}};
    if (effective.workspace_in_source) {
        source.skip.push_back(effective.workspace);
    }
    // The worker image often sits beside the spec, in the source tree (the requirements'
    // smoke test has worker.img there): it is the build's machine, not its input.
    if (effective.worker_image.kind == spec::ImageReference::Kind::file) {
        source.skip.push_back(effective.worker_image.value);
    }
    sources.push_back(std::move(source));
    return sources;
}

// Refuses a workspace the export must not replace: a non-empty folder without contractor's
// marker (the user's own files, or a spec's `workspace: ~/Documents`), a file or a symlink.
// Checked at plan time, before anything boots, so such a folder is never touched at all; the
// export checks again before it swaps anything in.
void check_workspace(const fs::path& workspace) {
    if (transfer::classify_workspace(workspace) != transfer::WorkspaceState::foreign) {
        return;
    }
    const std::string marker = (workspace / std::string(transfer::workspace_marker_name)).string();
    struct stat status {};
    std::string what;
    if (::lstat(workspace.c_str(), &status) != 0) {
        what = "cannot be checked: " + std::string(std::strerror(errno));
    } else if (S_ISLNK(status.st_mode)) {
        what = "is a symlink";
    } else if (!S_ISDIR(status.st_mode)) {
        what = "is not a folder";
    } else {
        what = "is a folder contractor did not make (it is not empty and has no " +
               std::string(transfer::workspace_marker_name) + " marker)";
    }
    throw UsageError("the workspace " + workspace.string() + " " + what +
                         "; the export would replace it, so nothing was started",
                     "choose another workspace, a new or empty folder; if an older contractor "
                     "made this one, mark it: touch " +
                         marker);
}

// The worker image file's header, read by contractor itself before anything boots, in both
// topologies: a qcow2 with a backing file (or an external data file) would show the worker a
// file of this host as a disk, and a format other than what its bytes say must not reach
// QEMU, which would otherwise be asked to open it (see image/disk_check.hpp).
void check_worker_image(const spec::EffectiveSpec& effective) {
    if (effective.worker_image.kind == spec::ImageReference::Kind::file) {
        image::check_disk_image(effective.worker_image.value);
    }
}

// The job for an effective spec: the image, the build, provisioning, the limits and the policy.
protocol::Job make_job(const spec::EffectiveSpec& effective) {
    protocol::Job job;
    const bool cached = effective.worker_image.kind == spec::ImageReference::Kind::cached;
    job.image_source = cached ? protocol::ImageSource::cached : protocol::ImageSource::file;
    job.image = effective.worker_image.value;
    job.build = effective.build;
    job.install = effective.install;
    job.ansible = effective.ansible;
    job.env = effective.env;
    job.limits.cpus = effective.limit("cpus").value;
    job.limits.memory = effective.limit("memory").value;
    job.limits.disk = effective.limit("disk").value;
    job.limits.cpu_time = effective.limit("cpu-time").value;
    job.limits.timeout = effective.limit("timeout").value;
    job.limits.network_rate = effective.limit("network-rate").value;
    job.limits.network_transfer = effective.limit("network-transfer").value;
    job.limits.log_size = effective.limit("log-size").value;
    job.limits.export_size = effective.limit("export-size").value;
    job.network = effective.network;
    job.effective = spec::to_json(effective);
    return job;
}

// The upstream proxy as the manager VM reaches it: a proxy on the host's loopback is at the
// manager's gateway address (QEMU user networking maps 10.0.2.2 to the host's 127.0.0.1).
std::optional<std::string> proxy_seen_from_manager(std::optional<std::string> proxy) {
    if (!proxy) {
        return proxy;
    }
    for (const std::string loopback : {"http://127.0.0.1", "http://localhost"}) {
        if (proxy->rfind(loopback, 0) == 0 &&
            (proxy->size() == loopback.size() || (*proxy)[loopback.size()] == ':' ||
             (*proxy)[loopback.size()] == '/')) {
            return "http://10.0.2.2" + proxy->substr(loopback.size());
        }
    }
    return proxy;
}

// Shows a copy's progress: in place on a terminal, every quarter in a log.
managervm::Progress copy_progress(std::ostream& err, const std::string& what) {
    const bool tty = isatty(STDERR_FILENO) == 1;
    auto last_quarter = std::make_shared<int>(-1);
    return [&err, what, tty, last_quarter](std::uint64_t done, std::uint64_t total) {
        const int percent = total == 0 ? 100 : static_cast<int>(done * 100 / total);
        if (tty) {
            err << "\rcontractor: copying " << what << ": " << (done >> 20) << " of "
                << (total >> 20) << " MiB (" << percent << "%)" << (done == total ? "\n" : "")
                << std::flush;
        } else if (percent / 25 != *last_quarter) {
            *last_quarter = percent / 25;
            err << "contractor: copying " << what << ": " << (done >> 20) << " of " << (total >> 20)
                << " MiB (" << percent << "%)" << std::endl;
        }
    };
}

// Puts the spec's worker image into the manager's cache (by digest) and points the job at it.
void send_worker_image(connection::Hop& manager, const spec::EffectiveSpec& effective,
                       protocol::Job& job, std::ostream& err) {
    const image::ImageCache cache(image::ImageCache::default_root());
    std::optional<image::CachedImage> entry;
    const auto& reference = effective.worker_image;
    if (reference.kind == spec::ImageReference::Kind::file) {
        if (!fs::is_regular_file(reference.value)) {
            throw UsageError("worker image " + reference.value + " does not exist",
                             "build one with 'contractor image build worker --output FILE'");
        }
        entry = cache.find_by_disk(image::file_sha256(reference.value, cache.root()));
        if (!entry) {
            // Not one of contractor's images (a cloud image, say): copied as a plain file,
            // named by its digest.
            const std::string digest = image::file_sha256(reference.value, cache.root());
            const std::string remote = ".cache/contractor/imports/" + digest + ".img";
            std::string output;
            if (manager.run("test -f " + connection::shell_quote(remote), output) != 0) {
                manager.run("mkdir -p .cache/contractor/imports", output);
                managervm::upload_file(
                    manager, reference.value, remote, 0644,
                    copy_progress(err, fs::path(reference.value).filename().string()));
            }
            job.image_source = protocol::ImageSource::file;
            job.image = remote;
            return;
        }
    } else {
        entry = cache.newest(job.image);
        if (!entry) {
            throw UsageError("there is no cached image called '" + job.image + "'",
                             "build it with 'contractor image build " + job.image + "'");
        }
    }
    // The manager checks them before every boot (an entry from an older contractor has none).
    cache.record_boot_digests(*entry);
    const std::string name = entry->name + "-" + entry->digest;
    const auto copy =
        managervm::install_image(manager, *entry, copy_progress(err, "worker image " + name));
    if (copy.copied) {
        char rate[64];
        std::snprintf(rate, sizeof rate, "%.1f s (%.1f MiB/s)", copy.seconds,
                      static_cast<double>(copy.bytes) / (1 << 20) / std::max(copy.seconds, 0.001));
        err << "contractor: copied worker image " << name
            << " into the manager: " << (copy.bytes >> 20) << " MiB in " << rate << std::endl;
    } else {
        err << "contractor: worker image " << name << " is already in the manager" << std::endl;
    }
    job.image_source = protocol::ImageSource::entry;
    job.image = copy.entry;
}

} // namespace

int run_build(const BuildOptions& options, Context& context) {
    const auto started = std::chrono::steady_clock::now();
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    const spec::BuildSpec spec = spec::load_spec(options.spec);
    const spec::EffectiveSpec effective = spec::resolve(
        spec, config, {options.image, options.source, options.workspace, fs::current_path()});
    // What a killed run left beside the workspace (a half-extracted tree) goes first.
    if (const auto stale = transfer::remove_stale_temporaries(effective.workspace); stale > 0) {
        context.err << "contractor: removed " << stale
                    << " unfinished workspace folder(s) left by a killed build" << std::endl;
    }
    // Refused before anything is printed, booted or written.
    check_workspace(effective.workspace);
    check_worker_image(effective);
    const bool nested = options.topology == "nested";
    if (nested) {
        context.err << "contractor: topology nested: the worker runs inside the manager VM"
                    << std::endl;
    } else {
        context.err << "contractor: topology direct: the worker runs under this host's libvirt, "
                       "without the manager VM's second wall (weaker HostProtection)"
                    << std::endl;
    }
    print_plan(context.err, effective);
    const auto accel = virt::choose_accel(
        virt::parse_accel_request(options.accel.empty() ? config.accel : options.accel));
    if (accel.accel == virt::Accel::tcg) {
        context.err << "contractor: " << accel.reason << std::endl;
    }
    protocol::Job job = make_job(effective);
    if (options.script) {
        job.build = *options.script;
    }
    // Inside the manager, the agent decides: a VM level deeper, KVM is rarely there.
    job.accel = nested                            ? protocol::WorkerAccel::manager_decides
                : accel.accel == virt::Accel::kvm ? protocol::WorkerAccel::kvm
                                                  : protocol::WorkerAccel::tcg;
    job.keep_worker = options.keep_worker;
    // host.contractor.internal: this machine's loopback, as the gateway reaches it. QEMU's
    // user network maps 10.0.2.2 to the host's 127.0.0.1 for the manager VM.
    job.contractor_host_address = nested ? "10.0.2.2" : "127.0.0.1";
    job.on_violation = options.network_audit ? protocol::OnViolation::audit
                       : config.on_violation == spec::OnViolation::warn
                           ? protocol::OnViolation::warn
                           : protocol::OnViolation::fail;
    job.upstream_proxy = nested ? proxy_seen_from_manager(config.proxy) : config.proxy;
    job.layers.reuse = !options.no_cache;
    job.layers.max_age = config.cache.max_age_seconds;
    job.layers.max_bytes = config.cache.max_size;
    job.pool.size = config.pool.size;
    job.pool.idle = config.pool.idle_seconds;
    job.max_workers = config.max_workers;
    auto sources = input_sources(effective);
    sources.back().skip.insert(sources.back().skip.end(), options.leave_out.begin(),
                               options.leave_out.end());
    SessionPaths paths{std::move(sources), effective.workspace,
                       effective.limit("export-size").value};
    paths.allow_git = config.export_allow_git;
    if (options.input_ready) {
        const auto deadline = started + std::chrono::seconds(effective.limit("timeout").value);
        paths.before_input = [&options, deadline](std::vector<transfer::PackSource>& input) {
            const auto more = options.input_ready(deadline);
            input.back().skip.insert(input.back().skip.end(), more.begin(), more.end());
        };
    }
    if (!fs::is_directory(effective.workspace.parent_path())) {
        throw UsageError("the workspace's folder " + effective.workspace.parent_path().string() +
                         " does not exist");
    }

    const fs::path log_file = new_log_file(log_folder(), options.spec);
    std::ofstream log(log_file);
    if (!log) {
        throw InfrastructureError("cannot write the build log " + log_file.string());
    }
    // Config `logs:` (default: the newest 100, none older than 30 days).
    prune_logs(log_folder(), config.logs, log_file);
    const auto agent_stderr = [&context](std::string_view chunk) {
        context.err.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        context.err.flush();
    };
    BuildOutcome outcome;
    std::optional<managervm::ManagerVm> manager_vm;
    try {
        if (nested) {
            manager_vm.emplace(open_manager(config, options.connect, options.accel));
            ManagerLink link = connect_manager(*manager_vm, context.err);
            send_worker_image(link.chain.last(), effective, job, context.err);
            auto agent = link.chain.last().start(link.agent + " serve", agent_stderr);
            ManagerSession session(*agent, context.out, context.err, log);
            try {
                outcome = session.run(job, paths);
            } catch (const Interrupted&) {
                throw;
            } catch (const UsageError&) {
                throw;
            } catch (const Error& error) {
                // The connection broke, or the agent saw its worker die: when that is because
                // the manager VM went away (a manager powering off stops its workers first),
                // say so. Other errors keep their words.
                if (error.exit_code() != ExitCode::infrastructure ||
                    settled_state(*manager_vm) == std::string("running")) {
                    throw;
                }
                explain_lost_manager(*manager_vm, error.what());
            }
        } else {
            connection::LocalHop local;
            auto agent = local.start_program({manager_program().string(), "serve"}, agent_stderr);
            ManagerSession session(*agent, context.out, context.err, log);
            outcome = session.run(job, paths);
        }
    } catch (const Interrupted&) {
        throw;
    } catch (const Error& error) {
        // CI reads the report whatever happened: an error gets one too.
        if (!options.report.empty()) {
            const nlohmann::ordered_json report = {
                {"result", "error"},
                {"exit_code", to_int(error.exit_code())},
                {"limit", nullptr},
                {"message", error.what()},
                {"hint", error.hint()},
                {"phases", nlohmann::json::array()},
                {"usage", nlohmann::json::object()},
                {"policy", protocol::policy_to_json(effective.network)},
                {"log", log_file.string()}};
            std::ofstream(options.report) << report_text(report);
        }
        throw;
    }

    const BuildRecord record{
        effective,
        outcome,
        options.topology,
        outcome.result.value("accel", std::string(virt::to_string(accel.accel))),
        log_file,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(),
        options.network_audit};
    print_summary(context.err, record);
    if (!options.report.empty()) {
        std::ofstream report(options.report);
        report << report_text(build_report(record));
        if (!report) {
            throw InfrastructureError("cannot write the report " + options.report);
        }
    }
    return outcome.result.value("exit_code", to_int(ExitCode::infrastructure));
}

void add_build_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<BuildOptions>();
    CLI::App* build = parent.add_subcommand(
        "build", "Build a spec in a disposable worker VM and bring its workspace back");
    build->add_option("spec", options->spec, "The build spec (YAML)")->required();
    build
        ->add_option("--topology", options->topology,
                     "nested (default: the worker runs inside the manager VM) or direct (under "
                     "this host's libvirt, one wall fewer)")
        ->check(CLI::IsMember({"direct", "nested"}));
    build->add_option("--connect", options->connect,
                      "Host libvirt URI for the manager VM (default: config manager.connect, "
                      "else qemu:///session)");
    build->add_option("--accel", options->accel, "auto, kvm or tcg (default: config, else auto)");
    build->add_option("--report", options->report, "Write a JSON report of the build to FILE");
    build->add_flag("--keep-worker", options->keep_worker,
                    "Leave a failed worker running for 'contractor shell'");
    build->add_flag("--network-audit", options->network_audit,
                    "Report refused network attempts without failing the build, with the "
                    "gateway open in every phase (rules or not), and print the 'network:' "
                    "section that would allow them");
    build->add_flag("--no-cache", options->no_cache,
                    "Provision afresh even when a provisioned layer of this image and "
                    "provisioning exists (the new layer replaces it)");
    // The spec's paths must stay in its folder; these are the user's way to point elsewhere.
    build->add_option("--source", options->source,
                      "Build this folder instead of the spec's 'source' (relative to here)");
    build->add_option("--workspace", options->workspace,
                      "Use this workspace instead of the spec's 'workspace' (relative to here)");
    build->add_option("--image", options->image,
                      "Boot this disk image file, or cached image NAME, instead of the spec's "
                      "'worker-image'");
    build->callback([options, &action] {
        action = [options](Context& context) {
            return run_build(*options, context);
        };
    });
}

} // namespace contractor::cli

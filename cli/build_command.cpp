#include "cli/build_report.hpp"
#include "cli/command.hpp"
#include "cli/manager_session.hpp"
#include "connection/local_hop.hpp"
#include "protocol/job.hpp"
#include "spec/effective.hpp"
#include "spec/spec.hpp"
#include "util/error.hpp"
#include "util/text.hpp"
#include "virt/accel.hpp"

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

struct BuildOptions {
    std::string spec;
    std::string topology = "direct";
    std::string accel;
    std::string report;
    bool keep_worker = false;
};

// contractor-manager: $CONTRACTOR_MANAGER, else beside this program.
fs::path manager_program() {
    if (const char* explicit_path = std::getenv("CONTRACTOR_MANAGER")) {
        return explicit_path;
    }
    std::error_code error;
    const fs::path self = fs::read_symlink("/proc/self/exe", error);
    const fs::path beside = self.parent_path() / "contractor-manager";
    if (error || !fs::exists(beside)) {
        throw InfrastructureError("contractor-manager is not installed beside contractor",
                                  "build both (cmake --build build) or set CONTRACTOR_MANAGER");
    }
    return beside;
}

// A new build log: $XDG_STATE_HOME/contractor/logs/SPEC-DATE-TIME-RANDOM.log.
fs::path new_log_file(const fs::path& spec_file) {
    fs::path state;
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg != '\0') {
        state = xdg;
    } else if (const char* home = std::getenv("HOME"); home != nullptr) {
        state = fs::path(home) / ".local" / "state";
    } else {
        state = fs::temp_directory_path();
    }
    const fs::path folder = state / "contractor" / "logs";
    fs::create_directories(folder);
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    return folder / (spec_file.stem().string() + "-" + stamp + "-" + util::random_hex(3) + ".log");
}

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
        sources.push_back({effective.workspace, "", {}, {effective.workspace / "src"}});
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

int run_build(const BuildOptions& options, Context& context) {
    const auto started = std::chrono::steady_clock::now();
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    const spec::BuildSpec spec = spec::load_spec(options.spec);
    const spec::EffectiveSpec effective = spec::resolve(spec, config);
    if (options.topology == "nested") {
        throw UsageError("the nested topology (a worker inside the manager VM) is not built yet",
                         "use --topology direct");
    }
    context.err << "contractor: topology direct: the worker runs under this host's libvirt, "
                   "without the manager VM's second wall (weaker HostProtection)"
                << std::endl;
    print_plan(context.err, effective);
    const auto accel = virt::choose_accel(
        virt::parse_accel_request(options.accel.empty() ? config.accel : options.accel));
    if (accel.accel == virt::Accel::tcg) {
        context.err << "contractor: " << accel.reason << std::endl;
    }

    protocol::Job job = protocol::make_job(effective);
    job.accel = std::string(virt::to_string(accel.accel));
    job.keep_worker = options.keep_worker;
    job.upstream_proxy = config.proxy;
    SessionPaths paths{input_sources(effective), effective.workspace,
                       effective.limit("export-size").value};
    if (!fs::is_directory(effective.workspace.parent_path())) {
        throw UsageError("the workspace's folder " + effective.workspace.parent_path().string() +
                         " does not exist");
    }

    const fs::path log_file = new_log_file(options.spec);
    std::ofstream log(log_file);
    if (!log) {
        throw InfrastructureError("cannot write the build log " + log_file.string());
    }
    connection::LocalHop local;
    auto manager = local.start_program(
        {manager_program().string(), "serve"}, [&context](std::string_view chunk) {
            context.err.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
            context.err.flush();
        });
    ManagerSession session(*manager, context.out, context.err, log);
    BuildOutcome outcome;
    try {
        outcome = session.run(job, paths);
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
            std::ofstream(options.report) << report.dump(2) << "\n";
        }
        throw;
    }

    const BuildRecord record{
        effective,
        outcome,
        "direct",
        std::string(virt::to_string(accel.accel)),
        log_file,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
    print_summary(context.err, record);
    if (!options.report.empty()) {
        std::ofstream report(options.report);
        report << build_report(record).dump(2) << "\n";
        if (!report) {
            throw InfrastructureError("cannot write the report " + options.report);
        }
    }
    return outcome.result.value("exit_code", to_int(ExitCode::infrastructure));
}

} // namespace

void add_build_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<BuildOptions>();
    CLI::App* build = parent.add_subcommand(
        "build", "Build a spec in a disposable worker VM and bring its workspace back");
    build->add_option("spec", options->spec, "The build spec (YAML)")->required();
    build
        ->add_option("--topology", options->topology,
                     "direct (worker under this host's libvirt) or nested (inside the manager "
                     "VM; from step 4)")
        ->check(CLI::IsMember({"direct", "nested"}));
    build->add_option("--accel", options->accel, "auto, kvm or tcg (default: config, else auto)");
    build->add_option("--report", options->report, "Write a JSON report of the build to FILE");
    build->add_flag("--keep-worker", options->keep_worker,
                    "Leave a failed worker running for 'contractor shell'");
    build->callback([options, &action] {
        action = [options](Context& context) {
            return run_build(*options, context);
        };
    });
}

} // namespace contractor::cli

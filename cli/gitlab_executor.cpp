// `contractor gitlab-executor config|prepare|run|cleanup`: a GitLab Runner custom executor
// driver (docs/gitlab.md; the runner's contract as tested: tests/gitlab/CONTRACT.md).
//
// The runner's own stages (prepare_script, get_sources, caches, artifacts,
// cleanup_file_variables) need its tools and the job token: they run here, on the runner's
// host, in the job's builds_dir. The job's steps run in a worker, under the runner
// administrator's spec and config, rebuilt from the job (the runner's script for a stage
// exports the job token; it never goes in): a job of `script` and `after_script` in one worker
// held from prepare to cleanup (gitlab_holder.hpp), any other job with a `contractor build` per
// step. What the steps left in the project folder comes back through the checked export.
#include "cli/build_run.hpp"
#include "cli/command.hpp"
#include "cli/gitlab_holder.hpp"
#include "cli/gitlab_job.hpp"
#include "image/cache.hpp"
#include "spec/config.hpp"
#include "spec/effective.hpp"
#include "spec/spec.hpp"
#include "transfer/directory.hpp"
#include "transfer/handles.hpp"
#include "util/error.hpp"
#include "util/private_file.hpp"
#include "util/text.hpp"
#include "virt/libvirt.hpp"
#include "vm/lease.hpp"
#include "vm/leftovers.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <spawn.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

#ifndef CONTRACTOR_VERSION
#define CONTRACTOR_VERSION "unknown"
#endif

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

struct ExecutorOptions {
    std::string spec;
    std::string topology = "nested";
    std::string root;
    std::string script;
    std::string stage;
};

std::string environment(const char* name) {
    const char* value = std::getenv(name);
    return value != nullptr ? value : "";
}

// The exit code the runner gave for this kind of end (its defaults: 1 and 2).
int runner_exit_code(const char* variable, int fallback) {
    const std::string text = environment(variable);
    if (text.empty() || text.size() > 3 ||
        text.find_first_not_of("0123456789") != std::string::npos) {
        return fallback;
    }
    return std::stoi(text);
}

int build_failure_code() {
    return runner_exit_code("BUILD_FAILURE_EXIT_CODE", 1);
}

int system_failure_code() {
    return runner_exit_code("SYSTEM_FAILURE_EXIT_CODE", 2);
}

// The folder of all jobs: --root, else $XDG_CACHE_HOME/contractor/gitlab.
fs::path jobs_root(const ExecutorOptions& options) {
    if (!options.root.empty()) {
        return fs::absolute(options.root);
    }
    return image::ImageCache::default_root().parent_path() / "gitlab";
}

// This job's folder: ROOT/jobs/CI_JOB_ID (the id is digits only, whatever the job says).
fs::path job_folder(const ExecutorOptions& options) {
    const std::string id = environment("CUSTOM_ENV_CI_JOB_ID");
    if (id.empty() || id.size() > 20 || id.find_first_not_of("0123456789") != std::string::npos) {
        throw InfrastructureError("CUSTOM_ENV_CI_JOB_ID is '" + id + "', not a job id",
                                  "run this only as a GitLab Runner custom executor");
    }
    return jobs_root(options) / "jobs" / id;
}

// BUILD_EXIT_CODE_FILE is read by the runner after any exit with the build-failure code, and
// never removed between stages: written only right before such an exit, removed otherwise.
int finish_stage(const gitlab::StageExit& end) {
    const std::string file = environment("BUILD_EXIT_CODE_FILE");
    if (!file.empty()) {
        std::error_code ignored;
        fs::remove(file, ignored);
    }
    switch (end.kind) {
    case gitlab::StageExit::Kind::success:
        return 0;
    case gitlab::StageExit::Kind::build_failure:
        if (!file.empty() && end.job_exit_code) {
            std::ofstream(file) << *end.job_exit_code << "\n";
        }
        return build_failure_code();
    case gitlab::StageExit::Kind::system_failure:
        break;
    }
    return system_failure_code();
}

// The job's variables as the runner passes them: CUSTOM_ENV_NAME=value.
gitlab::Variables job_variables() {
    gitlab::Variables variables;
    constexpr std::string_view prefix = "CUSTOM_ENV_";
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string_view text = *entry;
        const auto equals = text.find('=');
        if (text.starts_with(prefix) && equals != std::string_view::npos) {
            variables.emplace_back(std::string(text.substr(prefix.size(), equals - prefix.size())),
                                   std::string(text.substr(equals + 1)));
        }
    }
    return variables;
}

// The job's `script` and `after_script` when those are all its steps.
std::optional<std::pair<std::vector<std::string>, std::optional<std::vector<std::string>>>>
one_worker_steps(const gitlab::JobSteps& job) {
    std::optional<std::vector<std::string>> script;
    std::optional<std::vector<std::string>> after;
    for (const auto& [name, commands] : job.steps) {
        if (name == "script" && !script) {
            script = commands;
        } else if (name == "after_script" && !after) {
            after = commands;
        } else {
            return std::nullopt;
        }
    }
    if (!script) {
        return std::nullopt;
    }
    return std::make_pair(*script, after);
}

// Runs one of the runner's own scripts on this host with bash, in this process group, so that
// the runner's SIGTERM to the group reaches it and its grace time applies (proc::run_process
// gives a child a group of its own and kills that group at once on a cancel); returns its exit
// status, or -1 when it was killed.
int run_on_host(const std::string& script) {
    std::vector<std::string> words = {"/bin/bash", script};
    std::vector<char*> argv;
    for (auto& word : words) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
        throw InfrastructureError("cannot run /bin/bash for " + script);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            throw InfrastructureError("lost the script's process");
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The project folder after a step: the build's workspace came back with the project as src/
// (without any .git, which contractor never exports); it replaces the project's files, and
// the project's own .git, made on this host by get_sources, stays.
void take_back_project(const fs::path& workspace, const fs::path& project) {
    const fs::path returned = workspace / "src";
    if (!fs::is_directory(fs::symlink_status(returned))) {
        return; // nothing came back (a crossed limit exports nothing): the project is as it was
    }
    // Names first: a folder is not changed while it is being read.
    const auto names_in = [](const fs::path& folder) {
        std::vector<std::string> names;
        for (const auto& entry : fs::directory_iterator(folder)) {
            if (entry.path().filename() != ".git") {
                names.push_back(entry.path().filename());
            }
        }
        return names;
    };
    const transfer::Fd project_fd(
        ::open(project.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!project_fd) {
        throw InfrastructureError("cannot open the project folder " + project.string());
    }
    for (const auto& name : names_in(project)) {
        if (transfer::remove_tree(project_fd.get(), name) != 0) {
            throw InfrastructureError("cannot clear " + (project / name).string());
        }
    }
    for (const auto& name : names_in(returned)) {
        fs::rename(returned / name, project / name);
    }
    fs::remove_all(returned);
}

int print_config(const ExecutorOptions& options, Context& context) {
    const fs::path job = job_folder(options);
    const nlohmann::ordered_json config = {
        {"builds_dir", (job / "builds").string()},
        {"cache_dir", (jobs_root(options) / "cache").string()},
        {"builds_dir_is_shared", false},
        {"hostname", "contractor"},
        {"driver", {{"name", "contractor"}, {"version", CONTRACTOR_VERSION}}},
        {"shell", "bash"}};
    context.out << config.dump() << std::endl;
    return 0;
}

// Checks the administrator's spec and config as a build would, and makes the job's folders.
int prepare(const ExecutorOptions& options, Context& context) {
    const fs::path job = job_folder(options);
    fs::create_directories(job / "builds");
    fs::create_directories(job / "workspace");
    fs::create_directories(jobs_root(options) / "cache");
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    const spec::BuildSpec spec = spec::load_spec(options.spec);
    const spec::EffectiveSpec effective =
        spec::resolve(spec, config,
                      {std::nullopt, (job / "builds").string(), (job / "workspace").string(),
                       fs::current_path()});
    const gitlab::JobSteps steps =
        gitlab::parse_job_response(gitlab::read_text(environment("JOB_RESPONSE_FILE")));
    if (const auto one = one_worker_steps(steps)) {
        const fs::path project = environment("CUSTOM_ENV_CI_PROJECT_DIR");
        if (!gitlab::lies_below(project, job / "builds")) {
            throw InfrastructureError("the project folder '" + project.string() +
                                      "' is not in this job's builds_dir");
        }
        fs::create_directories(project);
        const gitlab::HolderFiles files = gitlab::holder_files(job);
        const std::string marker = "contractor-step-" + util::random_hex(16);
        util::write_private_file(files.marker, marker);
        if (one->second) {
            util::write_private_file(files.has_after_script, "");
        }
        util::write_private_file(
            files.script, gitlab::one_worker_script(
                              one->first, one->second,
                              gitlab::worker_variables(job_variables(), steps,
                                                       environment("CUSTOM_ENV_CI_JOB_TOKEN")),
                              marker));
        std::error_code ignored;
        std::vector<std::string> holder = {fs::read_symlink("/proc/self/exe", ignored).string()};
        if (context.config_location.explicit_file) {
            holder.insert(holder.end(), {"--config", *context.config_location.explicit_file});
        }
        holder.insert(holder.end(),
                      {"gitlab-executor", "--spec", options.spec, "--topology", options.topology,
                       "--root", jobs_root(options).string(), "hold"});
        gitlab::start_holder(std::move(holder), job / "holder.err");
        // The holder's lease says it runs; `run` and `cleanup` find it there.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (!vm::read_lease(job)) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw InfrastructureError("the job's holder did not start (see " +
                                          (job / "holder.err").string() + ")");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        context.out << "contractor: GitLab job " << job.filename().string()
                    << ": one worker for the job's script"
                    << (one->second ? " and after_script" : "")
                    << ", booting while the runner fetches the sources" << std::endl;
    }
    context.out << "contractor: GitLab job " << job.filename().string()
                << ": the job's steps run in " << options.topology << " workers of "
                << effective.worker_image.value << ", under " << options.spec << " and "
                << (context.config_location.explicit_file ? *context.config_location.explicit_file
                                                          : std::string("the user config"))
                << "; the job's own settings cannot change its limits or network" << std::endl;
    return 0;
}

int run_stage(const ExecutorOptions& options, Context& context) {
    const fs::path job = job_folder(options);
    const auto step = gitlab::worker_step(options.stage);
    if (!step) {
        return finish_stage(gitlab::stage_exit_of_host_script(run_on_host(options.script)));
    }
    const gitlab::HolderFiles files = gitlab::holder_files(job);
    if (fs::exists(files.marker)) {
        const fs::path project = environment("CUSTOM_ENV_CI_PROJECT_DIR");
        const bool has_after = fs::exists(files.has_after_script);
        if (*step == "script") {
            util::write_private_file(files.go, "");
            const gitlab::Relayed relayed = gitlab::relay(job, "script", has_after, context);
            if (!relayed.holder_result) {
                return finish_stage(gitlab::stage_exit_of_host_script(*relayed.step_status));
            }
            take_back_project(job / "workspace", project);
            return finish_stage(
                gitlab::stage_exit_of_build(relayed.holder_result->value("contractor_exit", 4),
                                            relayed.holder_result->value("build_exit_status", -1)));
        }
        if (*step == "after_script" && fs::exists(files.offset)) {
            const gitlab::Relayed relayed = gitlab::relay(job, "after_script", false, context);
            take_back_project(job / "workspace", project);
            if (relayed.step_status) {
                return finish_stage(gitlab::stage_exit_of_host_script(*relayed.step_status));
            }
            return finish_stage(
                gitlab::stage_exit_of_build(relayed.holder_result->value("contractor_exit", 4),
                                            relayed.holder_result->value("build_exit_status", -1)));
        }
        // The holder ended before the script did (a cancel, a worker that did not boot):
        // after_script gets a worker of its own.
    }
    const gitlab::JobSteps steps =
        gitlab::parse_job_response(gitlab::read_text(environment("JOB_RESPONSE_FILE")));
    const auto found = std::find_if(steps.steps.begin(), steps.steps.end(),
                                    [&](const auto& entry) { return entry.first == *step; });
    if (found == steps.steps.end()) {
        throw InfrastructureError("the job has no step '" + *step + "' for stage " + options.stage);
    }
    const fs::path project = environment("CUSTOM_ENV_CI_PROJECT_DIR");
    if (!gitlab::lies_below(project, job / "builds") || !fs::is_directory(project)) {
        throw InfrastructureError("the project folder '" + project.string() +
                                  "' is not in this job's builds_dir " + (job / "builds").string());
    }
    const std::string token = environment("CUSTOM_ENV_CI_JOB_TOKEN");
    BuildOptions build;
    build.spec = options.spec;
    build.topology = options.topology;
    build.source = project.string();
    build.workspace = (job / "workspace").string();
    build.report = (job / "report.json").string();
    fs::remove(build.report);
    build.script = gitlab::bash_command(gitlab::worker_script(
        found->second, gitlab::worker_variables(job_variables(), steps, token)));
    // A file the runner wrote with the token in it (a clone's .git/config) stays here.
    build.leave_out = gitlab::files_holding(project, token);
    for (const auto& file : build.leave_out) {
        context.out << "contractor: not sent into the worker (it holds the job token): "
                    << file.lexically_relative(project).string() << std::endl;
    }
    const int contractor_exit = run_build(build, context);
    take_back_project(job / "workspace", project);
    int build_exit_status = -1;
    try {
        build_exit_status =
            nlohmann::json::parse(gitlab::read_text(build.report)).value("build_exit_status", -1);
    } catch (const std::exception&) {
    }
    return finish_stage(gitlab::stage_exit_of_build(contractor_exit, build_exit_status));
}

// Removes the job's folder, whatever state it is in (the runner calls this after a failed
// config or prepare too, maybe more than once), and workers of builds that were killed.
int cleanup(const ExecutorOptions& options, Context& context) {
    const fs::path job = job_folder(options);
    if (const auto lease = vm::read_lease(job); lease && vm::holder_alive(*lease)) {
        // Its build stops its worker and removes it, as after Ctrl-C.
        ::kill(lease->owner, SIGTERM);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
        while (vm::holder_alive(*lease) && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (vm::holder_alive(*lease)) {
            ::kill(lease->owner, SIGKILL);
        }
    }
    if (const transfer::Fd jobs(
            ::open(job.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        jobs) {
        const int error = transfer::remove_tree(jobs.get(), job.filename());
        if (error != 0 && error != ENOENT) {
            throw InfrastructureError("cannot remove " + job.string() + ": " +
                                      std::strerror(error));
        }
    }
    virt::Connection connection(virt::default_uri());
    const auto runs = image::ImageCache::default_root().parent_path() / "runs";
    for (const auto& line : vm::remove_leftovers(connection, runs, vm::Leftovers::orphaned)) {
        context.out << "contractor: removed " << line << "\n";
    }
    return 0;
}

// Every error of the driver is the runner's failure, not the job's: one line, then the
// system-failure code.
CommandAction as_stage(std::function<int(Context&)> body) {
    return [body = std::move(body)](Context& context) {
        try {
            return body(context);
        } catch (const Interrupted& interrupted) {
            context.err << "contractor: " << interrupted.what() << "; cleaned up" << std::endl;
        } catch (const Error& error) {
            context.err << "contractor: error: " << error.what()
                        << (error.hint().empty() ? "" : " (" + error.hint() + ")") << std::endl;
        } catch (const std::exception& error) {
            context.err << "contractor: error: " << error.what() << std::endl;
        }
        return finish_stage({gitlab::StageExit::Kind::system_failure, std::nullopt});
    };
}

} // namespace

void add_gitlab_executor_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<ExecutorOptions>();
    CLI::App* executor = parent.add_subcommand(
        "gitlab-executor", "GitLab Runner custom executor driver: the job's steps run in "
                           "contractor workers (config_exec, prepare_exec, run_exec, "
                           "cleanup_exec of the runner's [runners.custom])");
    executor->require_subcommand(1);
    executor->add_option("--spec", options->spec,
                         "The spec every job runs under: worker image, provisioning, limits, "
                         "network (its source, workspace and build are the job's)");
    executor
        ->add_option("--topology", options->topology,
                     "nested (default) or direct, as for 'contractor build'")
        ->check(CLI::IsMember({"direct", "nested"}));
    executor->add_option("--root", options->root,
                         "Folder for the jobs' builds_dir and the cache (default: "
                         "$XDG_CACHE_HOME/contractor/gitlab)");
    const auto needs_spec = [options] {
        if (options->spec.empty()) {
            throw UsageError("gitlab-executor needs --spec FILE",
                             "the runner's config_args give it: see docs/gitlab.md");
        }
    };
    executor->add_subcommand("config", "Print the runner's settings for this job (JSON)")
        ->callback([options, &action] {
            action =
                as_stage([options](Context& context) { return print_config(*options, context); });
        });
    executor->add_subcommand("prepare", "Check the spec and config, make the job's folders")
        ->callback([options, needs_spec, &action] {
            needs_spec();
            action = as_stage([options](Context& context) { return prepare(*options, context); });
        });
    CLI::App* run = executor->add_subcommand(
        "run", "Run one stage: the runner's own on this host, the job's steps in a worker");
    run->add_option("script", options->script, "The stage's script the runner wrote")->required();
    run->add_option("stage", options->stage, "The stage's name")->required();
    run->callback([options, needs_spec, &action] {
        needs_spec();
        action = as_stage([options](Context& context) { return run_stage(*options, context); });
    });
    executor->add_subcommand("hold", "Hold one worker for a job (started by prepare)")
        ->group("")
        ->callback([options, &action] {
            action = [options](Context& context) {
                const fs::path job = job_folder(*options);
                BuildOptions build;
                build.spec = options->spec;
                build.topology = options->topology;
                build.source = environment("CUSTOM_ENV_CI_PROJECT_DIR");
                build.workspace = (job / "workspace").string();
                build.report = (job / "report.json").string();
                return gitlab::hold(job, std::move(build), environment("CUSTOM_ENV_CI_JOB_TOKEN"),
                                    context);
            };
        });
    executor->add_subcommand("cleanup", "Remove the job's folders and any worker left behind")
        ->callback([options, &action] {
            action = as_stage([options](Context& context) { return cleanup(*options, context); });
        });
}

} // namespace contractor::cli

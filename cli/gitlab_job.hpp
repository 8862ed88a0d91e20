#pragma once

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The GitLab Runner custom executor's job, as contractor's driver sees it (docs/gitlab.md):
// which stages run in a worker, what of the job goes in, and what the runner is told back.
// No I/O but files_holding(); the verb is in gitlab_executor.cpp.
namespace contractor::cli::gitlab {

using Variables = std::vector<std::pair<std::string, std::string>>;

// What the driver reads of the runner's JOB_RESPONSE_FILE: the job's steps (`script`,
// `after_script`, ...) and which variables are masked or files.
struct JobSteps {
    std::vector<std::pair<std::string, std::vector<std::string>>> steps; // name, commands
    std::set<std::string> masked;
    std::set<std::string> file_variables;
};

// Parses the job response; throws InfrastructureError when it is not the runner's JSON.
JobSteps parse_job_response(std::string_view text);

// The step of the job a run stage stands for: `build_script` and `step_script` are the job's
// `script`, `step_NAME` is NAME, `after_script` is itself. Every other stage (prepare_script,
// get_sources, the caches and artifacts, cleanup_file_variables) is the runner's own and runs
// on the runner's host: nullopt.
std::optional<std::string> worker_step(std::string_view stage);

// The job's variables (from the CUSTOM_ENV_ environment) that go into the worker: none that
// holds or is the job token or a registry password, none that is masked, none that is a file,
// none whose value contains `token`; CI_PROJECT_DIR and CI_BUILDS_DIR as the worker sees
// them. Returned sorted by name.
Variables worker_variables(const Variables& job_variables, const JobSteps& job,
                           std::string_view token);

// The worker's script for one step: the variables exported, then each command echoed as
// GitLab's shell does (`$ command`) and run by bash with errexit and pipefail, in
// /workspace/src.
std::string worker_script(const std::vector<std::string>& commands, const Variables& variables);

// The worker's script for a job held in one worker from prepare to cleanup: the job's
// `script`, a line `MARKER script STATUS`, then (when there is one) `after_script` with
// CI_JOB_STATUS set from that status and a line `MARKER after_script STATUS`. The build's own
// exit status is the script's.
std::string one_worker_script(const std::vector<std::string>& script,
                              const std::optional<std::vector<std::string>>& after_script,
                              const Variables& variables, const std::string& marker);

// A line `MARKER STEP STATUS` of one_worker_script: the step and its status.
std::optional<std::pair<std::string, int>> parse_marker(std::string_view line,
                                                        std::string_view marker);

// The build command that runs `script` (the spec's build runs under /bin/sh; jobs are bash).
std::string bash_command(const std::string& script);

// How one stage ended, as the runner must be told.
struct StageExit {
    enum class Kind { success, build_failure, system_failure };
    Kind kind = Kind::system_failure;
    std::optional<int> job_exit_code; // for BUILD_EXIT_CODE_FILE
};

// contractor build's exit code (and the build script's own exit status) as a stage's end: a
// failed script, a crossed limit or a network violation are the job's failure; a bad spec or
// config, infrastructure and interruption are the runner's.
StageExit stage_exit_of_build(int contractor_exit, int build_exit_status);

// A script the runner ran on its host exited with `status`.
StageExit stage_exit_of_host_script(int status);

// Regular files under `root` (not following symlinks) whose content holds `needle`.
std::vector<std::filesystem::path> files_holding(const std::filesystem::path& root,
                                                 std::string_view needle);

// Whether `path` is `folder` or lies below it, lexically (no `..`).
bool lies_below(const std::filesystem::path& path, const std::filesystem::path& folder);

} // namespace contractor::cli::gitlab

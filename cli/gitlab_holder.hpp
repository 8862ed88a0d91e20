#pragma once

#include "cli/build_run.hpp"
#include "cli/context.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

// One worker from prepare to cleanup (docs/gitlab.md): `prepare` starts a holder, a detached
// `contractor gitlab-executor hold` that runs the job's build; the worker boots and provisions
// while the runner fetches the sources, and takes them when the `run` of the job's script
// says they are there (the file `go`). The job's script and after_script run in that one
// worker; the holder writes everything the build prints to `holder.out`, and the `run` of
// each step relays it to the runner up to the line that says the step ended. At the end it
// writes `holder.json` (how the build ended). Used for jobs whose steps are `script` and, if
// any, `after_script`; other jobs get a worker per step.
namespace contractor::cli::gitlab {

// The files in the job's folder through which the holder and the driver's calls talk.
struct HolderFiles {
    std::filesystem::path output, result, go, offset, script, marker, has_after_script;
};
HolderFiles holder_files(const std::filesystem::path& job);

// A small file's text; throws InfrastructureError when it cannot be read. (The files are
// written with util::write_private_file: a reader sees all of one or nothing.)
std::string read_text(const std::filesystem::path& file);

// Starts `argv` (the holder's command line) in a session of its own, stdin from /dev/null, its
// output into `log`: the runner's SIGTERM to a stage's process group does not reach it; `run`
// passes a cancel on, `cleanup` ends it.
void start_holder(std::vector<std::string> argv, const std::filesystem::path& log);

// The holder's life: writes its lease into `job`, runs `build` (its spec, topology, source,
// workspace and report set by the caller; its script is the job's file `worker-script`), whose
// input waits for the file `go` (no longer than the build's `timeout`: then the build ends as
// limit-exceeded, limit `timeout`) and leaves out the project's files that hold `token`; its
// output goes to holder.out, how it ended to holder.json.
int hold(const std::filesystem::path& job, BuildOptions build, const std::string& token,
         Context& context);

// What a relay saw: the end of a step (its status), or the holder's end.
struct Relayed {
    std::optional<int> step_status;
    std::optional<nlohmann::json> holder_result;
};

// Copies holder.out to `context.out` from the saved offset, without the marker lines, until
// the line saying `step` ended (when `stop_at_step`; the offset after it is saved) or the
// holder's end. A cancel of this process (SIGTERM from the runner) is passed on to the holder,
// whose build then stops.
Relayed relay(const std::filesystem::path& job, const std::string& step, bool stop_at_step,
              Context& context);

} // namespace contractor::cli::gitlab

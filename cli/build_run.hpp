#pragma once

#include "cli/context.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace contractor::cli {

// What `contractor build` is asked to do: its command line, and what other commands that run a
// build (the GitLab executor) set on top.
struct BuildOptions {
    std::string spec;
    std::string topology = "nested";
    std::string connect;
    std::string accel;
    std::string report;
    bool keep_worker = false;
    // --network-audit: refused attempts are reported, not fatal, and the summary ends with
    // the `network:` section that would allow what the build tried.
    bool network_audit = false;
    // --no-cache: provision afresh even when a provisioned layer exists (the new one replaces
    // it).
    bool no_cache = false;
    // --image, --source, --workspace: the user's own paths instead of the spec's.
    std::optional<std::string> image;
    std::optional<std::string> source;
    std::optional<std::string> workspace;
    // Not on the command line: the script to run instead of the spec's `build`, and files of
    // the source that must not go into the worker (the GitLab executor's job script, and
    // files that hold the job's token).
    std::optional<std::string> script;
    std::vector<std::filesystem::path> leave_out;
    // Called when the worker is ready for its input, before the source is read, with the
    // moment the build's `timeout` runs out: returns more files to leave out (the GitLab
    // executor's holder waits there for the job's sources, no later than that moment).
    std::function<std::vector<std::filesystem::path>(std::chrono::steady_clock::time_point)>
        input_ready;
};

// Runs a build end to end and returns its exit code (ExitCode); throws Error as every command.
int run_build(const BuildOptions& options, Context& context);

} // namespace contractor::cli

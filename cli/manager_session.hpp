#pragma once

#include "cli/base_tap.hpp"
#include "connection/hop.hpp"
#include "protocol/frames.hpp"
#include "protocol/job.hpp"
#include "transfer/pack.hpp"
#include "transfer/safe_extract.hpp"
#include "util/terminal_filter.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace contractor::cli {

// What came back from one build.
struct BuildOutcome {
    nlohmann::json result; // the manager's "result" message
    bool workspace_committed = false;
    std::optional<std::string> workspace_problem; // why the workspace did not arrive
    bool export_too_large = false;                // the export-size limit refused it
    bool workspace_foreign = false;               // the target was not contractor's: left as it was
    std::vector<transfer::Rejected> rejected;     // entries refused on the way in (the first ones)
    std::uint64_t rejected_total = 0;             // all of them
    std::uint64_t workspace_bytes = 0;
    // Only what the build changed came back (applied to the CLI's copy of the input).
    bool workspace_changes = false;
    std::uint64_t workspace_removed = 0; // paths the changes removed
    std::uint64_t workspace_changed = 0; // entries they carried
    double copy_in_seconds = 0;
    std::uint64_t input_bytes = 0;
};

// Where the conversation's pieces go.
struct SessionPaths {
    std::vector<transfer::PackSource> input; // what the worker gets: workspace, then src/
    std::filesystem::path workspace;         // where the workspace comes back to
    std::uint64_t export_size = 0;
    // Config `export: {allow-git: true}`: .git folders and files and bare-repository layouts
    // may come back (refused by default: git runs what they configure).
    bool allow_git = false;
    // Called when the manager asks for the input, before it is packed: may add to it what must
    // stay out (the GitLab executor waits there for the runner to fetch the sources).
    std::function<void(std::vector<transfer::PackSource>&)> before_input{};
};

// Which of the session's output streams are terminals: the build's output shown on one passes
// through a util::TerminalFilter (colours only, no other control sequence).
struct Terminals {
    bool out = false;
    bool err = false;
};

// The CLI's side of the protocol with contractor-manager, over any stream (a local pipe in the
// direct topology, an SSH channel in the nested one): sends the job and the input tar stream,
// shows status and build output as they come, saves the log, takes the workspace back through
// the safe extractor.
class ManagerSession {
public:
    // `out` and `err` count as terminals when they are std::cout and std::cerr and those
    // descriptors are terminals (isatty).
    ManagerSession(connection::RemoteCommand& manager, std::ostream& out, std::ostream& err,
                   std::ofstream& log);
    ManagerSession(connection::RemoteCommand& manager, std::ostream& out, std::ostream& err,
                   std::ofstream& log, Terminals terminals);

    // Runs the job to its end. Throws Error for what the manager reports as an error (with its
    // exit code), Interrupted after Ctrl-C once the manager tore the worker down.
    BuildOutcome run(const protocol::Job& job, const SessionPaths& paths);

private:
    // The next frame, handling status and log frames on the way; checks for Ctrl-C.
    protocol::Frame next_frame();
    void handle_log(const protocol::Frame& frame);
    void send_input(const SessionPaths& paths, BuildOutcome& outcome);
    void receive_workspace(const SessionPaths& paths, BuildOutcome& outcome);

    connection::RemoteCommand& manager_;
    protocol::FrameReader reader_;
    protocol::FrameWriter writer_;
    std::ostream& out_;
    std::ostream& err_;
    std::ofstream& log_;
    Terminals terminals_;
    // One per stream of the worker: a sequence cut between two frames of one stream is held by
    // that stream's filter.
    util::TerminalFilter stdout_filter_;
    util::TerminalFilter stderr_filter_;
    // Made when the input is sent, which it also extracts as the base that the worker's stream
    // of changes applies to; takes the workspace back.
    std::unique_ptr<transfer::SafeExtractor> extractor_;
    std::unique_ptr<BaseTap> base_; // after extractor_, which its thread fills: goes first
    bool cancel_sent_ = false;
    std::chrono::steady_clock::time_point cancel_deadline_;
    // When the manager was last heard from (or we last stopped talking to it).
    std::chrono::steady_clock::time_point last_heard_ = std::chrono::steady_clock::now();
};

} // namespace contractor::cli

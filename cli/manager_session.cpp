#include "cli/manager_session.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/escape.hpp"

#include <algorithm>
#include <cstring>
#include <iostream>
#include <unistd.h>

namespace contractor::cli {
namespace {

// After Ctrl-C the manager tears the worker down and answers; this is how long it may take
// before it is killed (destroying a domain takes well under a second, even under TCG).
constexpr std::chrono::seconds cancel_grace(60);

// The size of the data frames of the input stream: large enough that framing costs nothing,
// small enough that a cancel is noticed quickly.
constexpr std::size_t input_chunk = 1 << 20;

// The manager ended the workspace stream early ("data-end" with "aborted"): a limit or a
// failure in the worker; the message that follows says which.
class WorkspaceAborted : public InfrastructureError {
public:
    explicit WorkspaceAborted(const std::string& reason)
        : InfrastructureError("the workspace stream was cut short (" + util::escape_name(reason) +
                              ")") {}
};

// Reads what is left of a workspace stream, so the next message is whole.
template <typename Source> void drain_stream(Source& source) {
    char drain[65536];
    while (source(drain, sizeof drain) > 0) {
    }
}

ExitCode exit_code_from(const nlohmann::json& message) {
    const int code = message.value("exit_code", to_int(ExitCode::infrastructure));
    switch (code) {
    case 1:
        return ExitCode::build_failed;
    case 2:
        return ExitCode::usage;
    case 3:
        return ExitCode::limit_exceeded;
    default:
        return ExitCode::infrastructure;
    }
}

// Whether `stream` writes to a terminal: only the process's own std::cout and std::cerr can.
bool is_terminal(const std::ostream& stream) {
    if (&stream == &std::cout) {
        return isatty(STDOUT_FILENO) == 1;
    }
    if (&stream == &std::cerr || &stream == &std::clog) {
        return isatty(STDERR_FILENO) == 1;
    }
    return false;
}

// A text field of a manager's message, for one line of output.
std::string text_field(const nlohmann::json& header, const char* key) {
    return util::escape_message(header.value(key, ""));
}

} // namespace

ManagerSession::ManagerSession(connection::RemoteCommand& manager, std::ostream& out,
                               std::ostream& err, std::ofstream& log)
    : ManagerSession(manager, out, err, log, Terminals{is_terminal(out), is_terminal(err)}) {}

ManagerSession::ManagerSession(connection::RemoteCommand& manager, std::ostream& out,
                               std::ostream& err, std::ofstream& log, Terminals terminals)
    : manager_(manager), reader_(manager), writer_(manager), out_(out), err_(err), log_(log),
      terminals_(terminals) {}

void ManagerSession::handle_log(const protocol::Frame& frame) {
    const bool is_build = frame.header.value("phase", "") == "build";
    const bool is_stdout = frame.header.value("stream", "") == "stdout";
    // Build output is the command's output: stdout to stdout. Everything else (provisioning,
    // the build's stderr) goes to stderr, where people look and pipes do not.
    const bool to_out = is_build && is_stdout;
    std::ostream& target = to_out ? out_ : err_;
    // On a terminal, the worker's bytes could drive it (clipboard, screen, title): only text
    // and colours pass. A file or a pipe gets them as they are, and so does the log.
    if (to_out ? terminals_.out : terminals_.err) {
        const std::string shown =
            (is_stdout ? stdout_filter_ : stderr_filter_).filter(frame.payload);
        target.write(shown.data(), static_cast<std::streamsize>(shown.size()));
    } else {
        target.write(frame.payload.data(), static_cast<std::streamsize>(frame.payload.size()));
    }
    target.flush();
    log_.write(frame.payload.data(), static_cast<std::streamsize>(frame.payload.size()));
    log_.flush();
}

protocol::Frame ManagerSession::next_frame() {
    for (;;) {
        if (util::cancel_requested() && !cancel_sent_) {
            err_ << "contractor: stopping the build and removing the worker..." << std::endl;
            cancel_sent_ = true;
            cancel_deadline_ = std::chrono::steady_clock::now() + cancel_grace;
            try {
                writer_.send({{"type", "cancel"}});
                manager_.close_write();
            } catch (const Error&) {
                // The manager is gone already: the wait below notices.
            }
        }
        if (cancel_sent_ && std::chrono::steady_clock::now() > cancel_deadline_) {
            manager_.terminate();
            throw Interrupted(util::cancel_signal());
        }
        std::optional<protocol::Frame> frame;
        try {
            frame = reader_.next(std::chrono::milliseconds(200));
        } catch (const protocol::ProtocolError& error) {
            if (cancel_sent_) {
                throw Interrupted(util::cancel_signal());
            }
            const int status = manager_.wait();
            throw InfrastructureError(std::string("contractor-manager ") +
                                          (error.peer_gone() ? "stopped" : "broke the protocol") +
                                          " (exit status " + std::to_string(status) + ")",
                                      "run with CONTRACTOR_DEBUG=1 to see what it did");
        }
        const auto now = std::chrono::steady_clock::now();
        if (!frame) {
            if (!cancel_sent_ && now - last_heard_ > protocol::silence_limit) {
                throw InfrastructureError(
                    "contractor-manager has sent nothing for " +
                        std::to_string(protocol::silence_limit.count()) + " s",
                    "'contractor manager status' shows whether the manager VM answers");
            }
            continue;
        }
        last_heard_ = now;
        const std::string& type = frame->type();
        if (type == "heartbeat") {
            continue;
        }
        if (type == "status") {
            err_ << "contractor: " << text_field(frame->header, "text") << std::endl;
            log_ << "contractor: " << text_field(frame->header, "text") << "\n";
            continue;
        }
        if (type == "phase") {
            err_ << "contractor: == " << text_field(frame->header, "name") << std::endl;
            log_ << "contractor: == " << text_field(frame->header, "name") << "\n";
            continue;
        }
        if (type == "log") {
            handle_log(*frame);
            continue;
        }
        if (type == "error") {
            if (cancel_sent_) {
                throw Interrupted(util::cancel_signal());
            }
            throw Error(frame->header.value("message", "contractor-manager failed"),
                        frame->header.value("hint", ""), exit_code_from(frame->header));
        }
        return std::move(*frame);
    }
}

void ManagerSession::send_input(const SessionPaths& paths, BuildOutcome& outcome) {
    const auto start = std::chrono::steady_clock::now();
    extractor_ = std::make_unique<transfer::SafeExtractor>(
        paths.workspace, paths.export_size, transfer::ExtractOptions{.allow_git = paths.allow_git});
    base_ = std::make_unique<BaseTap>(*extractor_, extractor_->temporary_directory().parent_path());
    std::string chunk;
    chunk.reserve(input_chunk);
    const auto flush = [&] {
        if (!chunk.empty()) {
            writer_.send({{"type", "data"}}, chunk);
            outcome.input_bytes += chunk.size();
            chunk.clear();
        }
    };
    transfer::pack_tree(paths.input, [&](const char* data, std::size_t size) {
        if (util::cancel_requested()) {
            throw Interrupted(util::cancel_signal());
        }
        base_->feed(data, size);
        while (size > 0) {
            const std::size_t take = std::min(size, input_chunk - chunk.size());
            chunk.append(data, take);
            data += take;
            size -= take;
            if (chunk.size() == input_chunk) {
                flush();
            }
        }
    });
    flush();
    // With a base here, the worker may send back only what the build changed.
    writer_.send({{"type", "data-end"}, {"base", base_->finish_sending()}});
    outcome.copy_in_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void ManagerSession::receive_workspace(const SessionPaths& paths, BuildOutcome& outcome) {
    if (!extractor_) {
        extractor_ = std::make_unique<transfer::SafeExtractor>(
            paths.workspace, paths.export_size,
            transfer::ExtractOptions{.allow_git = paths.allow_git});
    }
    transfer::SafeExtractor& extractor = *extractor_;
    if (base_) {
        // The base the worker's changes apply to (extracted while the build ran); why it is
        // missing, if it is, is thrown when a stream of changes comes.
        base_->wait();
    }
    std::string pending;
    std::size_t offset = 0;
    bool ended = false;
    std::uint64_t stream_bytes = 0;
    bool refused = false; // export-size was crossed: the rest is read and dropped
    std::string aborted;
    const auto source = [&](char* buffer, std::size_t capacity) -> std::size_t {
        while (offset == pending.size() && !ended) {
            protocol::Frame frame = next_frame();
            if (frame.type() == "data-end") {
                ended = true;
                // The manager cut the stream short (a limit, a failure): nothing of it is kept.
                aborted = frame.header.value("aborted", "");
                if (aborted == "export-size" && !refused) {
                    refused = true;
                    throw transfer::ExportTooLarge(paths.export_size, stream_bytes);
                }
                if (!aborted.empty() && !refused) {
                    throw WorkspaceAborted(aborted);
                }
            } else if (frame.type() == "data") {
                pending = std::move(frame.payload);
                offset = 0;
                // export-size counts the whole stream, headers and padding too, as the manager
                // does: a stream of a million empty entries is refused like a large file.
                stream_bytes += pending.size();
                if (stream_bytes > paths.export_size && !refused) {
                    refused = true;
                    throw transfer::ExportTooLarge(paths.export_size, stream_bytes);
                }
            } else {
                throw InfrastructureError("contractor-manager sent '" +
                                          util::escape_name(frame.type()) +
                                          "' in the middle of the workspace");
            }
        }
        const std::size_t take = std::min(capacity, pending.size() - offset);
        std::memcpy(buffer, pending.data() + offset, take);
        offset += take;
        return take;
    };
    try {
        const transfer::ExtractResult extracted = extractor.extract(source);
        outcome.rejected = extracted.rejected;
        outcome.rejected_total = extracted.rejected_total;
        outcome.workspace_bytes = extracted.bytes;
        outcome.workspace_changes = extracted.changes;
        outcome.workspace_removed = extracted.removed;
        outcome.workspace_changed = extracted.changed;
        // The rest of the stream (tar's end padding) is read so the next message is whole.
        char drain[65536];
        while (source(drain, sizeof drain) > 0) {
        }
        extractor.commit();
        outcome.workspace_committed = true;
    } catch (const transfer::ExportTooLarge& error) {
        outcome.workspace_problem = error.what();
        outcome.export_too_large = true;
        refused = true; // the rest is read and dropped, whatever the manager says of it
        drain_stream(source);
    } catch (const WorkspaceAborted& error) {
        // The result or error that follows says why.
        outcome.workspace_problem = error.what();
    } catch (const transfer::ForeignWorkspace& error) {
        // The stream was read whole; the extractor removes its temporary folder. The build
        // goes on to its result, and the summary says why its workspace is not there.
        outcome.workspace_problem = std::string(error.what()) + " (" + error.hint() + ")";
        outcome.workspace_foreign = true;
    }
}

BuildOutcome ManagerSession::run(const protocol::Job& job, const SessionPaths& paths) {
    writer_.send({{"type", "hello"}, {"version", protocol::protocol_version}});
    writer_.send(protocol::job_to_json(job));
    const protocol::Frame hello = next_frame();
    if (hello.type() != "hello" || hello.header.value("version", 0) != protocol::protocol_version) {
        throw InfrastructureError("contractor-manager does not speak protocol version " +
                                      std::to_string(protocol::protocol_version),
                                  "use a contractor and contractor-manager from the same build");
    }
    BuildOutcome outcome;
    for (;;) {
        protocol::Frame frame = next_frame();
        if (frame.type() == "send-input") {
            if (paths.before_input) {
                SessionPaths ready = paths;
                paths.before_input(ready.input);
                send_input(ready, outcome);
            } else {
                send_input(paths, outcome);
            }
            // Its heartbeats waited while we were sending; the clock starts again.
            last_heard_ = std::chrono::steady_clock::now();
        } else if (frame.type() == "workspace") {
            receive_workspace(paths, outcome);
        } else if (frame.type() == "result") {
            outcome.result = std::move(frame.header);
            break;
        } else {
            throw InfrastructureError("contractor-manager sent an unexpected '" +
                                      util::escape_name(frame.type()) + "' message");
        }
    }
    manager_.close_write();
    manager_.wait();
    if (outcome.export_too_large && outcome.result.value("result", "") != "limit-exceeded") {
        // The build may have succeeded, but what it left is more than the user accepts back.
        outcome.result["result"] = "limit-exceeded";
        outcome.result["exit_code"] = to_int(ExitCode::limit_exceeded);
        outcome.result["limit"] = "export-size";
        outcome.result["message"] = *outcome.workspace_problem;
    }
    if (outcome.workspace_foreign && outcome.result.value("result", "") == "success") {
        // The build did what it should, but the user does not get its workspace: not a
        // success. Exit 2, as when the plan refuses such a workspace before the build.
        outcome.result["result"] = "error";
        outcome.result["exit_code"] = to_int(ExitCode::usage);
        outcome.result["message"] = *outcome.workspace_problem;
    }
    return outcome;
}

} // namespace contractor::cli

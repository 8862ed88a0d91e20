// The three phases that move bytes between the CLI and the worker: the input tar stream in,
// the build's output out (live), the workspace tar stream out. The manager relays bytes; it
// never unpacks what the worker sends (the CLI does, with its safety checks).
#include "connection/hop.hpp"
#include "gateway/gateway.hpp"
#include "manager-agent/phases.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <array>

namespace contractor::manager {

namespace {

// Where the build script is written in the worker: outside /workspace, so it is not exported.
constexpr const char* build_script = "/tmp/contractor-build.sh";

// The build's environment: a fixed base (the same for every build, whatever the manager's own
// environment), then the spec's `env` in order.
std::string build_environment(const protocol::Job& job, int gateway_port) {
    std::string words = "HOME=/home/worker USER=worker LOGNAME=worker SHELL=/bin/sh "
                        "PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8";
    if (!job.network.build.empty()) {
        // Tools that honour the usual proxy variables reach the allowed hosts this way.
        const std::string proxy = "http://127.0.0.1:" + std::to_string(gateway_port) + "/";
        for (const char* name : {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"}) {
            words += std::string(" ") + name + "=" + proxy;
        }
    }
    for (const auto& [name, value] : job.env) {
        words += " " + connection::shell_quote(name + "=" + value);
    }
    return words;
}

// A stderr sink that keeps the first 64 KiB: enough for an error message.
connection::ErrorSink keep_first(std::string& errors) {
    return connection::bounded_sink(errors, 65536);
}

} // namespace

void copy_in(JobContext& context) {
    std::string errors;
    // /workspace is made here, owned by the SSH user, in the same command as the tar (no extra
    // round trip): contractor's images have it (and skip sudo, a second or two under TCG), an
    // image contractor did not build (a foreign cloud-init image) does not. sudo -n never
    // waits for a password; the images' users have passwordless sudo.
    auto tar = context.worker.worker().start(
        context.worker.clock_reset() +
            "{ [ -d /workspace ] && [ -w /workspace ] || "
            "sudo -n install -d -o \"$(id -u)\" -g \"$(id -g)\" -m 755 /workspace; } && "
            "tar -x -f - -C /workspace --no-same-owner",
        keep_first(errors));
    context.outbox.send({{"type", "send-input"}});
    std::uint64_t bytes = 0;
    context.pump.feed(*tar, [&](std::chrono::milliseconds timeout) -> std::optional<std::string> {
        auto frame = context.inbox.next(timeout);
        if (!frame) {
            return std::string();
        }
        if (frame->type() == "data-end") {
            return std::nullopt;
        }
        if (frame->type() != "data") {
            throw InfrastructureError("the CLI sent '" + frame->type() +
                                      "' in the middle of the input stream");
        }
        bytes += frame->payload.size();
        return std::move(frame->payload);
    });
    if (const int status = context.pump.finish(*tar); status != 0) {
        throw InfrastructureError("making /workspace or unpacking the input in the worker "
                                  "failed (exit " +
                                  std::to_string(status) + "): " + errors);
    }
    util::debug("manager", "copied " + std::to_string(bytes) + " bytes into the worker");
}

int run_build(JobContext& context) {
    const protocol::Job& job = context.job;
    context.worker.worker().write_file(build_script, job.build, 0755);
    Outbox& outbox = context.outbox;
    // set -e: a failing command fails the build, as in a Makefile recipe or a CI step.
    auto build = context.worker.worker().start(
        "cd /workspace/src && exec env -i " + build_environment(job, worker_gateway_port) +
            " /bin/sh -e " + build_script + " </dev/null",
        context.pump.stderr_to(
            [&outbox](std::string_view chunk) { outbox.log("stderr", "build", chunk); }));
    build->close_write();
    return context.pump.drain(*build, limits::Meter::log, [&outbox](std::string_view chunk) {
        outbox.log("stdout", "build", chunk);
    });
}

void copy_out(JobContext& context) {
    std::string errors;
    // As root: the build may have made files only root can read (sudo is the worker's).
    auto tar = context.worker.worker().start("sudo tar -c -f - -C /workspace --numeric-owner .",
                                             keep_first(errors));
    tar->close_write();
    context.outbox.send({{"type", "workspace"}});
    // Every byte of the stream counts against export-size, headers and padding included: a
    // stream of a million empty entries is 512 MB of headers. The CLI counts the same way.
    // The CLI is in the middle of the stream when a limit or a failure cuts it: it is told
    // the stream was cut short, so it keeps the workspace it had, then gets the result or
    // the error.
    const auto cut_short = [&context](std::string_view reason) {
        try {
            context.outbox.send({{"type", "data-end"}, {"aborted", reason}});
        } catch (const std::exception&) {
        }
    };
    int status = 0;
    try {
        status = context.pump.drain(*tar, limits::Meter::export_stream,
                                    [&context](std::string_view chunk) {
                                        context.outbox.send({{"type", "data"}}, chunk);
                                    });
    } catch (const limits::LimitExceeded& exceeded) {
        cut_short(limits::to_string(exceeded.hit().limit));
        throw;
    } catch (...) {
        cut_short("error");
        throw;
    }
    context.outbox.send({{"type", "data-end"}});
    if (status != 0 && status != 1) {
        // GNU tar exits 1 when a file changed while it was read: still a usable workspace.
        context.outbox.status("packing the workspace in the worker ended with " +
                              std::to_string(status) + ": " + errors);
    }
}

} // namespace contractor::manager

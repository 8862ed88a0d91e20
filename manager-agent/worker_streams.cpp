// The three phases that move bytes between the CLI and the worker: the input tar stream in,
// the build's output out (live), the workspace tar stream out. The manager relays bytes; it
// never unpacks what the worker sends (the CLI does, with its safety checks).
#include "connection/hop.hpp"
#include "gateway/gateway.hpp"
#include "manager-agent/job_runner.hpp"
#include "util/cancel.hpp"
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

void JobRunner::copy_in() {
    begin_phase("copy-in");
    std::string errors;
    // /workspace is made here, owned by the SSH user, in the same command as the tar (no extra
    // round trip): contractor's images have it, an image contractor did not build (a foreign
    // cloud-init image) does not. sudo -n never waits for a password; the images' users have
    // passwordless sudo.
    auto tar = chain_->last().start(
        clock_reset() + "sudo -n install -d -o \"$(id -u)\" -g \"$(id -g)\" -m 755 /workspace && "
                        "tar -x -f - -C /workspace --no-same-owner",
        keep_first(errors));
    outbox_.send({{"type", "send-input"}});
    std::uint64_t bytes = 0;
    for (;;) {
        check_limits();
        auto frame = inbox_.next(std::chrono::milliseconds(200));
        if (!frame) {
            continue;
        }
        if (frame->type() == "data-end") {
            break;
        }
        if (frame->type() != "data") {
            throw InfrastructureError("the CLI sent '" + frame->type() +
                                      "' in the middle of the input stream");
        }
        bytes += frame->payload.size();
        tar->write(frame->payload.data(), frame->payload.size());
    }
    tar->close_write();
    if (const int status = tar->wait(); status != 0) {
        throw InfrastructureError("making /workspace or unpacking the input in the worker "
                                  "failed (exit " +
                                  std::to_string(status) + "): " + errors);
    }
    util::debug("manager", "copied " + std::to_string(bytes) + " bytes into the worker");
}

int JobRunner::run_build() {
    begin_phase("build");
    gateway_->set_rules(job_.network.build, "build");
    if (!job_.network.build.empty()) {
        open_gateway_tunnel();
    }
    chain_->last().write_file(build_script, job_.build, 0755);
    // set -e: a failing command fails the build, as in a Makefile recipe or a CI step.
    auto build = chain_->last().start("cd /workspace/src && exec env -i " +
                                          build_environment(job_, worker_gateway_port) +
                                          " /bin/sh -e " + build_script + " </dev/null",
                                      [this](std::string_view chunk) {
                                          log_bytes_ += chunk.size();
                                          outbox_.log("stderr", "build", chunk);
                                      });
    build->close_write();
    std::array<char, 65536> buffer{};
    for (;;) {
        check_limits();
        const auto count =
            build->read(buffer.data(), buffer.size(), std::chrono::milliseconds(200));
        if (count && *count == 0) {
            break;
        }
        if (count) {
            log_bytes_ += *count;
            outbox_.log("stdout", "build", std::string_view(buffer.data(), *count));
        }
    }
    const int status = build->wait();
    check_limits();
    return status;
}

void JobRunner::copy_out() {
    begin_phase("copy-out");
    std::string errors;
    // As root: the build may have made files only root can read (sudo is the worker's).
    auto tar = chain_->last().start("sudo tar -c -f - -C /workspace --numeric-owner .",
                                    keep_first(errors));
    tar->close_write();
    outbox_.send({{"type", "workspace"}});
    // Tar headers and padding add a little to the file bytes; the CLI enforces the exact limit.
    const std::uint64_t ceiling =
        job_.limit("export-size") + job_.limit("export-size") / 8 + (16ULL << 20);
    std::uint64_t bytes = 0;
    std::array<char, 1 << 20> buffer{};
    for (;;) {
        if (util::cancel_requested()) {
            throw Interrupted(util::cancel_signal());
        }
        const auto count = tar->read(buffer.data(), buffer.size(), std::chrono::milliseconds(200));
        if (count && *count == 0) {
            break;
        }
        if (!count) {
            continue;
        }
        bytes += *count;
        if (bytes > ceiling) {
            // The CLI has already refused the stream by now; stop reading a runaway worker.
            tar->terminate();
            break;
        }
        outbox_.send({{"type", "data"}}, std::string_view(buffer.data(), *count));
    }
    outbox_.send({{"type", "data-end"}});
    const int status = tar->wait();
    workspace_sent_ = true;
    if (status != 0 && status != 1) {
        // GNU tar exits 1 when a file changed while it was read: still a usable workspace.
        outbox_.status("packing the workspace in the worker ended with " + std::to_string(status) +
                       ": " + errors);
    }
}

} // namespace contractor::manager

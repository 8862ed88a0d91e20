// The three phases that move bytes between the CLI and the worker: the input in (a tar stream,
// or a filesystem made here from the CLI's stream), the build's output out (live), the
// workspace tar stream out (whole, or only the build's changes). The manager unpacks only the
// CLI's stream; it relays what the worker sends and never unpacks it (the CLI does, with its
// safety checks).
#include "connection/hop.hpp"
#include "gateway/gateway.hpp"
#include "manager-agent/exchange_disk.hpp"
#include "manager-agent/input_filesystem.hpp"
#include "manager-agent/phases.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <utility>
#include <vector>

namespace contractor::manager {

namespace {

// Where the build script is written in the worker: outside /workspace, so it is not exported.
constexpr const char* build_script = "/tmp/contractor-build.sh";

// The build's environment: a fixed base (the same for every build, whatever the manager's own
// environment), then the spec's `env` in order.
std::string build_environment(const protocol::Job& job, int gateway_port) {
    std::string words = "HOME=/home/worker USER=worker LOGNAME=worker SHELL=/bin/sh "
                        "PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8";
    if (!job.network.build.empty() || job.on_violation == protocol::OnViolation::audit) {
        // Tools that honour the usual proxy variables reach the allowed hosts this way (an
        // audit sees what they ask for by name, allowed or not).
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

// Where the input goes in the worker: /workspace is made here, owned by the SSH user, in the
// same command (no extra round trip): contractor's images have it (and skip sudo, a second
// or two under TCG), an image contractor did not build (a foreign cloud-init image) does not.
// sudo -n never waits for a password; the images' users have passwordless sudo.
constexpr const char* make_workspace =
    "{ [ -d /workspace ] && [ -w /workspace ] || "
    "sudo -n install -d -o \"$(id -u)\" -g \"$(id -g)\" -m 755 /workspace; }";

// The CLI's input stream, a frame at a time: the next chunk, an empty one when nothing came
// within `timeout`, nullopt at its end.
std::optional<std::string> next_input_chunk(JobContext& context,
                                            std::chrono::milliseconds timeout) {
    auto frame = context.inbox.next(timeout);
    if (!frame) {
        return std::string();
    }
    if (frame->type() == "data-end") {
        context.input.cli_has_base = frame->header.value("base", false);
        return std::nullopt;
    }
    if (frame->type() != "data") {
        throw InfrastructureError("the CLI sent '" + frame->type() +
                                  "' in the middle of the input stream");
    }
    return std::move(frame->payload);
}

void check_unpacked(int status, const std::string& errors) {
    if (status != 0) {
        throw InfrastructureError("making /workspace or unpacking the input in the worker "
                                  "failed (exit " +
                                  std::to_string(status) + "): " + errors);
    }
}

// A small input: one tar stream over one SSH channel, `head` first, then the rest as it comes.
void copy_in_over_ssh(JobContext& context, std::string head, bool ended) {
    std::string errors;
    auto tar = context.worker.worker().start(context.worker.clock_reset() + make_workspace +
                                                 " && tar -x -f - -C /workspace --no-same-owner",
                                             keep_first(errors));
    context.pump.feed(*tar, [&](std::chrono::milliseconds timeout) -> std::optional<std::string> {
        if (!head.empty()) {
            return std::exchange(head, std::string());
        }
        if (ended) {
            return std::nullopt;
        }
        return next_input_chunk(context, timeout);
    });
    check_unpacked(context.pump.finish(*tar), errors);
}

// The rest of the input, after `head`, written whole into `file`; its size.
std::uint64_t receive_input(JobContext& context, const std::filesystem::path& file,
                            const std::string& head) {
    std::uint64_t bytes = 0;
    std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
    if (!out) {
        out.open(file, std::ios::out | std::ios::binary);
    }
    const auto write = [&](const std::string& chunk) {
        out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        bytes += chunk.size();
    };
    write(head);
    for (;;) {
        context.pump.check();
        const auto chunk = next_input_chunk(context, limits::Pump::slice);
        if (!chunk) {
            break;
        }
        write(*chunk);
    }
    out.flush();
    if (!out) {
        throw InfrastructureError("cannot write the input to " + file.string(),
                                  "is the disk of the machine running contractor-manager "
                                  "full?");
    }
    return bytes;
}

// A larger input as a tar stream in the exchange disk's file, the disk grown to it, then
// unpacked in the worker from the disk.
void unpack_over_exchange(JobContext& context, std::uint64_t bytes) {
    const std::uint64_t device = context.worker.machine().resize_exchange(bytes);
    std::string errors;
    auto tar = context.worker.worker().start(context.worker.clock_reset() + make_workspace +
                                                 " && " + unpack_from_exchange(device, bytes),
                                             keep_first(errors));
    tar->close_write();
    check_unpacked(context.pump.finish(*tar), errors);
    util::debug("manager", "unpacked " + std::to_string(bytes) + " bytes from the exchange disk");
}

// The worker's SSH user, or nullopt when it does not answer as expected.
std::optional<WorkerUser> ask_worker_user(JobContext& context) {
    std::string printed;
    std::string errors;
    auto id = context.worker.worker().start(worker_user_command(), keep_first(errors));
    id->close_write();
    const int status =
        context.pump.drain(*id, limits::Meter::log, [&printed](std::string_view chunk) {
            printed.append(chunk.substr(0, 64 - std::min<std::size_t>(printed.size(), 64)));
        });
    return status == 0 ? parse_worker_user(printed) : std::nullopt;
}

// The input in `file` as a filesystem the worker mounts (input_filesystem.hpp); false when
// that cannot be done here or there, with nothing mounted in the worker.
bool mount_as_filesystem(JobContext& context, const std::filesystem::path& file,
                         const std::filesystem::path& exchange) {
    const auto user = ask_worker_user(context);
    if (!user) {
        return false;
    }
    vm::Machine& machine = context.worker.machine();
    const auto bytes = make_input_filesystem(file, machine.run_directory(), exchange, *user);
    if (!bytes) {
        return false;
    }
    const std::uint64_t device = machine.resize_exchange(*bytes);
    std::string errors;
    auto mount = context.worker.worker().start(
        context.worker.clock_reset() + mount_input_command(device, *user), keep_first(errors));
    mount->close_write();
    if (const int status = context.pump.finish(*mount); status != 0) {
        util::debug("manager", "the worker did not mount the input (exit " +
                                   std::to_string(status) + "): " + errors);
        return false;
    }
    context.input.filesystem_bytes = device;
    return true;
}

// Copies `from` over the start of `to` (the exchange disk's file, which QEMU holds open: written
// in place, never replaced).
void copy_into(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::ifstream in(from, std::ios::binary);
    std::fstream out(to, std::ios::in | std::ios::out | std::ios::binary);
    std::vector<char> buffer(1 << 20);
    while (in && out) {
        in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
        out.write(buffer.data(), in.gcount());
    }
    out.flush();
    if (!out || in.bad()) {
        throw InfrastructureError("cannot copy the input into " + to.string(),
                                  "is the disk of the machine running contractor-manager "
                                  "full?");
    }
}

} // namespace

void copy_in(JobContext& context) {
    context.outbox.send({{"type", "send-input"}});
    // The first 4 MiB choose the way in.
    std::string head;
    bool ended = false;
    while (!ended && head.size() < exchange_input_threshold) {
        context.pump.check();
        auto chunk = next_input_chunk(context, limits::Pump::slice);
        if (!chunk) {
            ended = true;
        } else {
            head += *chunk;
        }
    }
    const auto exchange = context.worker.machine().exchange_file();
    if (ended || !exchange) {
        copy_in_over_ssh(context, std::move(head), ended);
        return;
    }
    const auto input = context.worker.machine().run_directory() / "input.tar";
    struct RemoveInput {
        std::filesystem::path file;
        ~RemoveInput() {
            std::error_code ignored;
            std::filesystem::remove(file, ignored);
        }
    } remove_input{input};
    const std::uint64_t bytes = receive_input(context, input, head);
    if (!mount_as_filesystem(context, input, *exchange)) {
        copy_into(input, *exchange);
        unpack_over_exchange(context, bytes);
    }
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
    vm::Machine& machine = context.worker.machine();
    const auto exchange = machine.exchange_file();
    if (!exchange) {
        throw InfrastructureError("the worker " + machine.name() + " has no exchange disk");
    }
    // One MiB more than export-size: a stream that crosses it is seen crossing it. It goes
    // after the input's filesystem, which the worker still has mounted.
    constexpr std::uint64_t margin = 1024 * 1024;
    const std::uint64_t offset = context.input.filesystem_bytes.value_or(0);
    const std::uint64_t device = machine.resize_exchange(
        offset + std::min(context.job.limits.export_size, std::uint64_t{1} << 62) + margin);
    // Only the changes when the CLI kept the input to apply them to.
    const ExportShape shape = context.input.filesystem_bytes && context.input.cli_has_base
                                  ? ExportShape::changes
                                  : ExportShape::whole;
    std::string errors;
    // As root: the build may have made files only root can read (sudo is the worker's).
    auto pack = context.worker.worker().start(pack_workspace_command(device, offset, shape),
                                              keep_first(errors));
    pack->close_write();
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
    int tar_status = 0;
    try {
        std::string printed;
        const int status =
            context.pump.drain(*pack, limits::Meter::log, [&printed](std::string_view chunk) {
                printed.append(chunk.substr(0, 256 - std::min<std::size_t>(printed.size(), 256)));
            });
        const auto packed = parse_packed(printed);
        if (status != 0 || !packed) {
            throw InfrastructureError("packing the workspace onto the exchange disk in the worker "
                                      "failed (exit " +
                                      std::to_string(status) + "): " + errors);
        }
        tar_status = packed->tar_status;
        // The worker's count, never more than the disk holds after the offset.
        std::ifstream in(*exchange, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offset));
        std::uint64_t left = std::min<std::uint64_t>(packed->bytes, device - offset);
        std::vector<char> buffer(1 << 20);
        while (left > 0 && in) {
            in.read(buffer.data(),
                    static_cast<std::streamsize>(std::min<std::uint64_t>(left, buffer.size())));
            const auto got = static_cast<std::size_t>(in.gcount());
            if (got == 0) {
                break;
            }
            left -= got;
            context.pump.pass(std::string_view(buffer.data(), got), limits::Meter::export_stream,
                              [&context](std::string_view chunk) {
                                  context.outbox.send({{"type", "data"}}, chunk);
                              });
        }
    } catch (const limits::LimitExceeded& exceeded) {
        cut_short(limits::to_string(exceeded.hit().limit));
        throw;
    } catch (...) {
        cut_short("error");
        throw;
    }
    context.outbox.send({{"type", "data-end"}});
    if (tar_status != 0 && tar_status != 1) {
        // GNU tar exits 1 when a file changed while it was read: still a usable workspace.
        context.outbox.status("packing the workspace in the worker ended with " +
                              std::to_string(tar_status) + ": " + errors);
    }
}

} // namespace contractor::manager

#pragma once

#include "limits/pump.hpp"
#include "manager-agent/inbox.hpp"
#include "manager-agent/outbox.hpp"
#include "manager-agent/worker_session.hpp"
#include "protocol/job.hpp"

#include <optional>
#include <string>

// The phases of a job after boot, each a short function over the same context: every byte to
// or from the worker goes through the pump, so no phase can forget a limit.
namespace contractor::manager {

// How the input reached the worker, which decides how the workspace leaves it.
struct InputLayout {
    bool cli_has_base = false; // the CLI keeps the input as a base ("base" in its data-end)
    // The input is a read-only filesystem of this size at the start of the exchange disk,
    // under an overlay at /workspace (input_filesystem.hpp); none after a tar stream.
    std::optional<std::uint64_t> filesystem_bytes;
};

struct JobContext {
    const protocol::Job& job;
    WorkerSession& worker;
    limits::Pump& pump;
    Inbox& inbox;
    Outbox& outbox;
    InputLayout input = {};
};

// The spec's `install:` packages with apt, then its `ansible:` playbook, both inside the
// worker. nullopt when it worked (or there was nothing to do), else why it failed.
std::optional<std::string> provision(JobContext& context);

// Takes the input tar stream from the CLI and unpacks it in the worker's /workspace.
void copy_in(JobContext& context);

// Runs the build script, streaming its output; its exit status.
int run_build(JobContext& context);

// Packs the worker's /workspace and sends it to the CLI (which unpacks it with its checks).
// Ends the stream with "data-end" whatever happens; after a limit or a failure mid-stream
// that frame says so ("aborted"), and the CLI keeps the workspace it had.
void copy_out(JobContext& context);

} // namespace contractor::manager

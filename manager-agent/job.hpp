#pragma once

#include "limits/budget.hpp"
#include "manager-agent/inbox.hpp"
#include "manager-agent/outbox.hpp"
#include "protocol/job.hpp"
#include "util/exit_code.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace contractor::manager {

// How a job ended.
enum class Outcome {
    success,
    build_failed,      // the build script exited non-zero
    provision_failed,  // apt or the playbook failed
    network_violation, // the worker tried what its allowlist refuses (on-violation: fail), or
                       // provisioning failed after such an attempt
    limit_exceeded,    // a hard limit was crossed: the worker was stopped at once
};

// "success", "build-failed", "build-failed", "network-violation", "limit-exceeded": the
// result's name in the protocol and the report.
std::string_view to_string(Outcome outcome);
// The one place an outcome becomes an exit code.
ExitCode exit_code(Outcome outcome);

struct PhaseTime {
    std::string name;
    double seconds = 0;
};

// What the manager answers at the end of a job (sent as the "result" message).
struct JobResult {
    Outcome outcome = Outcome::success;
    std::string message;
    std::optional<limits::LimitHit> limit; // when outcome is limit_exceeded
    int build_exit_status = -1;            // -1: the build did not run to its end
    bool workspace_exported = false;
    std::vector<PhaseTime> phases;
    nlohmann::ordered_json usage;
    std::string accel;
    std::optional<std::string> kept_worker; // --keep-worker and a failed build
    // The provisioned layer: {"key", "reused", "saved", "bytes", "age_seconds"}; null when the
    // job has none (manager-agent/layers.hpp).
    nlohmann::ordered_json layer;
};

nlohmann::ordered_json to_json(const JobResult& result);

// The budget a job's limits give it.
limits::Allowance allowance_for(const protocol::Job& job);

// One job from boot to teardown: boots the worker (WorkerSession), provisions it, takes the
// input from the CLI, runs the build, sends the workspace back. Throws Error for failures
// that are not the build's (exit code 4), Interrupted when the CLI cancelled or went away;
// the worker is gone by the time it returns or throws.
JobResult run_job(const protocol::Job& job, Inbox& inbox, Outbox& outbox);

} // namespace contractor::manager

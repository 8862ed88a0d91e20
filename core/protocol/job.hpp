#pragma once

#include "policy/network_rule.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// The job the CLI hands to contractor-manager, and the messages around it. Its own library
// (contractor_job): the frame protocol (frames.hpp) knows nothing of specs or policies.
//
// CLI -> manager: hello, job, then (when the manager asks with "send-input") data frames
//   carrying the input tar stream and "data-end" ("base": true when the CLI keeps a copy of
//   the input, so the workspace may come back as changes to it); "cancel" at any time after
//   that.
// manager -> CLI: hello, "status" lines, "phase" (a phase started), "log" frames (build output,
//   raw bytes, "stream": "stdout"|"stderr"), "send-input", data frames carrying the workspace
//   tar stream and "data-end" ("aborted": LIMIT-or-"error" when it was cut short), "heartbeat"
//   every few seconds, and finally exactly one "result" or "error".
namespace contractor::protocol {

// Bumped on any incompatible change; both sides refuse a peer with another version.
inline constexpr int protocol_version = 4;

// The manager sends {"type": "heartbeat"} this often while it runs a job; the CLI gives up on
// a manager it has heard nothing from for `silence_limit`.
inline constexpr std::chrono::seconds heartbeat_interval(5);
inline constexpr std::chrono::seconds silence_limit(20);

// Where the worker image is, as the manager sees it.
enum class ImageSource {
    file,   // a path on the manager's side
    cached, // the newest cached image of that name
    entry,  // NAME-DIGEST: a cache entry the CLI copied into the manager (nested)
};

// How the worker runs. In the nested topology the CLI leaves the choice to the manager, a VM
// level below it: that is where KVM is or is not.
enum class WorkerAccel { manager_decides, kvm, tcg };

// What a refused network attempt does to the build (config `network: {on-violation: ...}`).
enum class OnViolation {
    fail, // the build stops at once: network-violation, exit 3
    warn, // the build goes on; the report lists the attempt
    // --network-audit: as warn, and every phase gets the gateway (its ports, resolver and the
    // build's proxy variables), rules or not, so that what the build tries is seen by name
    audit,
};

// The job's hard limits, in base units (bytes, seconds, bytes per second).
struct JobLimits {
    std::uint64_t cpus = 1;
    std::uint64_t memory = 0;
    std::uint64_t disk = 0;
    std::uint64_t cpu_time = 0;
    std::uint64_t timeout = 0;
    std::uint64_t network_rate = 0;
    std::uint64_t network_transfer = 0;
    std::uint64_t log_size = 0;
    std::uint64_t export_size = 0;
};

// Provisioned layers (image::LayerStore), from the config's `cache:` section and --no-cache.
struct LayerPolicy {
    bool reuse = true;                     // false (--no-cache): provision afresh, then save
    std::uint64_t max_age = 7 * 86400;     // seconds; an older layer is provisioned afresh
    std::uint64_t max_bytes = 20ULL << 30; // the store's size cap; 0 keeps no layer at all
};

// Ready workers (manager-agent/ready_pool.hpp), from the config's `pool:` and `pool-idle:`.
struct PoolPolicy {
    std::uint64_t size = 1;   // ready workers kept per kind of build: 0 (off) or 1
    std::uint64_t idle = 900; // seconds a ready worker waits for a build before it is stopped
};

// What the manager needs to run one build.
struct Job {
    ImageSource image_source = ImageSource::file;
    std::string image;
    std::string build;
    std::vector<std::string> install;
    nlohmann::ordered_json ansible; // a playbook, or null
    std::vector<std::pair<std::string, std::string>> env;
    JobLimits limits;
    policy::EffectivePolicy network;
    WorkerAccel accel = WorkerAccel::tcg;
    bool keep_worker = false;
    // An HTTP proxy every allowed connection of the worker goes through (user config).
    std::optional<std::string> upstream_proxy;
    // Where host.contractor.internal leads, as the manager reaches it: 127.0.0.1 when the
    // manager runs on the machine that runs contractor (direct), 10.0.2.2 inside the manager VM.
    std::string contractor_host_address = "127.0.0.1";
    OnViolation on_violation = OnViolation::fail;
    LayerPolicy layers;
    PoolPolicy pool;
    // How many builds run at once on the manager's side (config max-workers); more wait.
    std::uint64_t max_workers = 2;
    nlohmann::ordered_json effective; // the effective spec, for the report

    bool provisions() const { return !install.empty() || (!ansible.is_null() && !ansible.empty()); }
};

nlohmann::ordered_json job_to_json(const Job& job);
// Throws ProtocolError (protocol/frames.hpp) naming the missing or mistyped field.
Job job_from_json(const nlohmann::json& message);

// The policy as the job, the plan and the report write it: {"provision": [...], "build": [...]},
// each rule {"host", "port", "protocol", "from"}.
nlohmann::ordered_json policy_to_json(const policy::EffectivePolicy& policy);

} // namespace contractor::protocol

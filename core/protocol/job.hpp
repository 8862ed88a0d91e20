#pragma once

#include "policy/network_rule.hpp"
#include "spec/effective.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

// The job the CLI hands to contractor-manager, and the messages around it.
//
// CLI -> manager: hello, job, then (when the manager asks with "send-input") data frames
//   carrying the input tar stream and "data-end"; "cancel" at any time after that.
// manager -> CLI: hello, "status" lines, "phase" (a phase started), "log" frames (build output,
//   raw bytes, "stream": "stdout"|"stderr"), "send-input", data frames carrying the workspace
//   tar stream and "data-end", "heartbeat" every few seconds, and finally exactly one "result"
//   or "error".
namespace contractor::protocol {

// Bumped on any incompatible change; both sides refuse a peer with another version.
inline constexpr int protocol_version = 1;

// The manager sends {"type": "heartbeat"} this often while it runs a job; the CLI gives up on
// a manager it has heard nothing from for `silence_limit`.
inline constexpr std::chrono::seconds heartbeat_interval(5);
inline constexpr std::chrono::seconds silence_limit(20);

// What the manager needs to run one build.
struct Job {
    // "file" (a path on the manager's side), "cached" (the newest image of that name) or
    // "entry" (NAME-DIGEST: a cache entry the CLI copied into the manager).
    std::string image_kind;
    std::string image;
    std::string build;
    std::vector<std::string> install;
    nlohmann::ordered_json ansible; // a playbook, or null
    std::vector<std::pair<std::string, std::string>> env;
    std::map<std::string, std::uint64_t, std::less<>> limits; // every key of limit_fields
    policy::EffectivePolicy network;
    std::string accel = "tcg"; // "kvm" or "tcg", decided by the CLI
    bool keep_worker = false;
    // An HTTP proxy every allowed connection of the worker goes through (user config).
    std::optional<std::string> upstream_proxy;
    nlohmann::ordered_json effective; // the effective spec, for the report

    std::uint64_t limit(std::string_view key) const;
};

nlohmann::ordered_json job_to_json(const Job& job);
// Throws ProtocolError (protocol/frames.hpp) naming the missing or mistyped field.
Job job_from_json(const nlohmann::json& message);
// The job for an effective spec.
Job make_job(const spec::EffectiveSpec& effective);

nlohmann::ordered_json policy_to_json(const policy::EffectivePolicy& policy);

} // namespace contractor::protocol

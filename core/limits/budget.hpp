#pragma once

#include "util/error.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

// The budget of one job: every hard limit the manager enforces, in one place, fed by the pump
// (bytes the worker sends), the watchdog (CPU time, disk, console) and the clock. A crossed
// limit is recorded once (the first one stays) and thrown by check(), which every wait calls.
namespace contractor::limits {

enum class Limit { timeout, cpu_time, memory, disk, log_size, export_size, network_transfer };

// The limit's key in the spec: "timeout", "cpu-time", "memory", "disk", "log-size",
// "export-size", "network-transfer".
std::string_view to_string(Limit limit);

// One limit crossed: what the build had used when it was stopped against what it was allowed,
// in the limit's unit (seconds for timeout and cpu-time, bytes for the others).
struct LimitHit {
    Limit limit = Limit::timeout;
    double used = 0;
    double allowed = 0;
    std::string detail; // what happened, in words: "the kernel killed python3 (pid 154)"

    // "cpu-time: the worker used 61.2 s of CPU time, over its limit of 60 s (1.2 s over)".
    std::string message() const;
    double overshoot() const { return used > allowed ? used - allowed : 0; }
};

// A hard limit was crossed: exit code 3.
class LimitExceeded : public Error {
public:
    explicit LimitExceeded(LimitHit hit);
    const LimitHit& hit() const { return hit_; }

private:
    LimitHit hit_;
};

// The worker tried to reach what its phase's allowlist does not allow, and the user's config
// says such a build fails (on-violation: fail, the default): exit code 3.
class NetworkViolation : public Error {
public:
    explicit NetworkViolation(std::string what);
};

// What one job may use.
struct Allowance {
    std::chrono::seconds timeout{7200};
    double cpu_seconds = 3600;
    std::uint64_t memory_bytes = 1ULL << 30;
    std::uint64_t disk_bytes = 8ULL << 30;
    std::uint64_t log_bytes = 64ULL << 20;
    std::uint64_t export_bytes = 4ULL << 30;
    std::uint64_t network_bytes = 0; // network-transfer, both directions; 0: unlimited
};

// The share of the disk limit at which the host counts the worker's disk as full: the overlay
// plus the image under it, as the host sees them. A worker that filled its filesystem as its
// unprivileged user reached 96.7% here (ext4 keeps 5% for root); 90% leaves room for the
// filesystem's own metadata.
inline constexpr double disk_full_share = 0.9;

// The serial console counts against log-size on its own, never below this: a normal boot
// prints a few hundred bytes, a cloud-init image's a few hundred KiB.
inline constexpr std::uint64_t console_floor_bytes = 1ULL << 20;

// Usage so far, for the report.
struct Usage {
    double elapsed_seconds = 0;
    double cpu_seconds = 0;
    std::uint64_t log_bytes = 0;
    std::uint64_t export_bytes = 0;
    std::uint64_t network_bytes = 0;
    std::uint64_t disk_bytes = 0; // the host's view: overlay and image allocation
};

// Thread-safe: the pump charges it on the job's thread, the watchdog on its own.
class Budget {
public:
    explicit Budget(Allowance allowance,
                    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now());

    const Allowance& allowance() const { return allowance_; }

    // Charges `bytes` of output (stdout or stderr, any phase) and returns how many of them fit
    // in log-size: the caller passes on only those. Crossing records the hit.
    std::uint64_t charge_log(std::uint64_t bytes);
    // Charges bytes of the returning workspace stream, everything in it (headers, padding,
    // content); returns how many fit in export-size. Crossing records the hit.
    std::uint64_t charge_export(std::uint64_t bytes);
    // Charges bytes the gateway is about to relay, either direction; false when they do not
    // fit in network-transfer (crossing records the hit, and the connection ends).
    bool charge_network(std::uint64_t bytes);
    // Records that the worker tried what the allowlist refuses (`what`, in words), when the
    // job fails on a violation. The first reason to stop stays, limit or violation.
    void record_violation(std::string what);
    // The console log's size now; over max(log-size, console_floor_bytes) records a log-size hit.
    void observe_console(std::uint64_t bytes);
    // Guest CPU seconds so far (boot included); over cpu-time records the hit.
    void observe_cpu(double seconds);
    // The worker's disk as the host sees it; at disk_full_share of disk records the hit.
    void observe_disk(std::uint64_t allocated_bytes);
    // Checks the deadline against `now`; past it records the hit.
    void
    observe_clock(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());
    // Records a hit found elsewhere (an OOM kill on the console, a paused disk). The first hit
    // stays; later ones are ignored.
    void record(LimitHit hit);

    // Throws Interrupted when the job was cancelled, LimitExceeded when a limit has been
    // crossed (the deadline is checked now), NetworkViolation after a refused attempt that
    // fails the job. Called in every wait on the worker.
    void check();
    // The recorded hit, if any (without checking the clock).
    std::optional<LimitHit> hit() const;
    // The recorded violation, if any.
    std::optional<std::string> violation() const;
    Usage usage() const;

private:
    // Adds `bytes` to `used` (a field of usage_); returns how many fit under `allowed`, and
    // records `limit` when they do not all fit.
    std::uint64_t charge(std::uint64_t& used, std::uint64_t allowed, Limit limit,
                         const char* detail, std::uint64_t bytes);
    void record_locked(LimitHit hit);

    const Allowance allowance_;
    const std::chrono::steady_clock::time_point start_;
    const std::chrono::steady_clock::time_point deadline_;
    mutable std::mutex mutex_;
    Usage usage_;
    std::optional<LimitHit> hit_;
    std::optional<std::string> violation_;
};

} // namespace contractor::limits

#include "limits/budget.hpp"

#include "util/cancel.hpp"

#include <cmath>
#include <cstdio>

namespace contractor::limits {
namespace {

bool in_seconds(Limit limit) {
    return limit == Limit::timeout || limit == Limit::cpu_time;
}

std::string amount(Limit limit, double value) {
    char text[48];
    if (in_seconds(limit)) {
        std::snprintf(text, sizeof text, "%.1f s", value);
    } else if (value >= 1 << 20) {
        std::snprintf(text, sizeof text, "%.1f MiB", value / (1 << 20));
    } else {
        std::snprintf(text, sizeof text, "%.0f bytes", value);
    }
    return text;
}

std::string what_was_used(Limit limit) {
    switch (limit) {
    case Limit::timeout:
        return "the job ran for";
    case Limit::cpu_time:
        return "the worker used CPU time of";
    case Limit::memory:
    case Limit::disk:
        return "the worker used";
    case Limit::log_size:
        return "the build printed";
    case Limit::export_size:
        return "the returning workspace stream carried";
    case Limit::network_transfer:
        return "the worker's network traffic came to";
    }
    return "used";
}

} // namespace

std::string_view to_string(Limit limit) {
    switch (limit) {
    case Limit::timeout:
        return "timeout";
    case Limit::cpu_time:
        return "cpu-time";
    case Limit::memory:
        return "memory";
    case Limit::disk:
        return "disk";
    case Limit::log_size:
        return "log-size";
    case Limit::export_size:
        return "export-size";
    case Limit::network_transfer:
        return "network-transfer";
    }
    return "";
}

std::string LimitHit::message() const {
    std::string text = std::string(to_string(limit)) + ": ";
    if (limit == Limit::memory) {
        text += "the worker ran out of its " + amount(limit, allowed) + " of memory";
    } else if (limit == Limit::disk) {
        text += "the worker's disk is full: the host sees " + amount(limit, used) +
                " written of its " + amount(limit, allowed);
    } else {
        text += what_was_used(limit) + " " + amount(limit, used) + ", over its limit of " +
                amount(limit, allowed);
        if (overshoot() > 0) {
            text += " (" + amount(limit, overshoot()) + " over)";
        }
    }
    if (!detail.empty()) {
        text += "; " + detail;
    }
    return text;
}

LimitExceeded::LimitExceeded(LimitHit hit)
    : Error(hit.message(), {}, ExitCode::limit_exceeded), hit_(std::move(hit)) {}

NetworkViolation::NetworkViolation(std::string what)
    : Error("network-violation: " + what, {}, ExitCode::limit_exceeded) {}

Budget::Budget(Allowance allowance, std::chrono::steady_clock::time_point start)
    : allowance_(allowance), start_(start), deadline_(start + allowance.timeout) {}

std::uint64_t Budget::charge(std::uint64_t& used, std::uint64_t allowed, Limit limit,
                             const char* detail, std::uint64_t bytes) {
    const std::lock_guard lock(mutex_);
    const std::uint64_t room = used >= allowed ? 0 : allowed - used;
    used += bytes;
    if (bytes <= room) {
        return bytes;
    }
    record_locked(
        {limit, static_cast<double>(used), static_cast<double>(allowed), std::string(detail)});
    return room;
}

std::uint64_t Budget::charge_log(std::uint64_t bytes) {
    return charge(usage_.log_bytes, allowance_.log_bytes, Limit::log_size, "the rest was not kept",
                  bytes);
}

std::uint64_t Budget::charge_export(std::uint64_t bytes) {
    return charge(usage_.export_bytes, allowance_.export_bytes, Limit::export_size,
                  "nothing was exported", bytes);
}

bool Budget::charge_network(std::uint64_t bytes) {
    if (allowance_.network_bytes == 0) {
        const std::lock_guard lock(mutex_);
        usage_.network_bytes += bytes;
        return true;
    }
    return charge(usage_.network_bytes, allowance_.network_bytes, Limit::network_transfer,
                  "the connection was cut and the worker stopped", bytes) == bytes;
}

void Budget::record_violation(std::string what) {
    const std::lock_guard lock(mutex_);
    if (!hit_ && !violation_) {
        violation_ = std::move(what);
    }
}

std::optional<std::string> Budget::violation() const {
    const std::lock_guard lock(mutex_);
    return violation_;
}

void Budget::observe_console(std::uint64_t bytes) {
    const std::uint64_t cap = std::max(allowance_.log_bytes, console_floor_bytes);
    if (bytes > cap) {
        const std::lock_guard lock(mutex_);
        record_locked({Limit::log_size, static_cast<double>(bytes), static_cast<double>(cap),
                       "on the worker's serial console"});
    }
}

void Budget::observe_cpu(double seconds) {
    const std::lock_guard lock(mutex_);
    usage_.cpu_seconds = seconds;
    if (seconds > allowance_.cpu_seconds) {
        record_locked({Limit::cpu_time, seconds, allowance_.cpu_seconds, {}});
    }
}

void Budget::observe_disk(std::uint64_t allocated_bytes) {
    const std::lock_guard lock(mutex_);
    usage_.disk_bytes = allocated_bytes;
    const double full = disk_full_share * static_cast<double>(allowance_.disk_bytes);
    if (static_cast<double>(allocated_bytes) >= full) {
        record_locked({Limit::disk, static_cast<double>(allocated_bytes),
                       static_cast<double>(allowance_.disk_bytes),
                       "the host counts a disk as full at 90% of the limit; nothing was "
                       "exported"});
    }
}

void Budget::observe_clock(std::chrono::steady_clock::time_point now) {
    const std::lock_guard lock(mutex_);
    usage_.elapsed_seconds = std::chrono::duration<double>(now - start_).count();
    if (now > deadline_) {
        record_locked({Limit::timeout,
                       usage_.elapsed_seconds,
                       static_cast<double>(allowance_.timeout.count()),
                       {}});
    }
}

void Budget::record(LimitHit hit) {
    const std::lock_guard lock(mutex_);
    record_locked(std::move(hit));
}

void Budget::record_locked(LimitHit hit) {
    if (!hit_ && !violation_) {
        hit_ = std::move(hit);
    }
}

void Budget::check() {
    if (util::cancel_requested()) {
        throw Interrupted(util::cancel_signal());
    }
    observe_clock();
    if (auto crossed = hit()) {
        throw LimitExceeded(std::move(*crossed));
    }
    if (auto refused = violation()) {
        throw NetworkViolation(std::move(*refused));
    }
}

std::optional<LimitHit> Budget::hit() const {
    const std::lock_guard lock(mutex_);
    return hit_;
}

Usage Budget::usage() const {
    const std::lock_guard lock(mutex_);
    Usage usage = usage_;
    usage.elapsed_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    return usage;
}

} // namespace contractor::limits

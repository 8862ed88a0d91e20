#include "manager-agent/watchdog.hpp"

#include "util/cancel.hpp"
#include "util/log.hpp"

namespace contractor::manager {
namespace {

// The most console bytes one look reads, and the longest line kept while waiting for its end:
// a flood is capped by the budget (observe_console), not by reading all of it.
constexpr std::size_t console_read_limit = 1 << 20;
constexpr std::size_t console_line_limit = 4096;

} // namespace

std::optional<std::string> oom_victim(std::string_view line) {
    constexpr std::string_view marker = "Out of memory: Killed process ";
    const auto at = line.find(marker);
    if (at == std::string_view::npos) {
        return std::nullopt;
    }
    std::string_view rest = line.substr(at + marker.size());
    const auto space = rest.find(' ');
    const std::string pid(rest.substr(0, space));
    std::string name = "a process";
    if (const auto open = rest.find('('); open != std::string_view::npos) {
        if (const auto close = rest.find(')', open); close != std::string_view::npos) {
            name = std::string(rest.substr(open + 1, std::min<std::size_t>(close - open - 1, 64)));
        }
    }
    return name + " (pid " + pid + ")";
}

Watchdog::Watchdog(limits::Budget& budget, WorkerProbe& probe, std::chrono::milliseconds interval)
    : budget_(budget), probe_(probe), interval_(interval) {
    thread_ = std::thread([this] {
        std::unique_lock lock(sleeping_);
        while (!ending_) {
            lock.unlock();
            try {
                look();
            } catch (const std::exception& error) {
                util::debug("watchdog", std::string("a look failed: ") + error.what());
            }
            lock.lock();
            wake_.wait_for(lock, interval_, [this] { return ending_; });
        }
    });
}

Watchdog::~Watchdog() {
    {
        const std::lock_guard lock(sleeping_);
        ending_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void Watchdog::look() {
    const std::lock_guard lock(looking_);
    budget_.observe_clock();
    if (const auto cpu = probe_.cpu_seconds()) {
        budget_.observe_cpu(*cpu);
    }
    const std::uint64_t allocation = probe_.disk_allocation();
    budget_.observe_disk(allocation);
    if (probe_.paused_on_write_error()) {
        budget_.record({limits::Limit::disk, static_cast<double>(allocation),
                        static_cast<double>(budget_.allowance().disk_bytes),
                        "QEMU paused the worker: a write to its disk failed on the host (is the "
                        "host's own disk full?); nothing was exported"});
    }
    scan_console();
    if ((budget_.hit() || budget_.violation() || util::cancel_requested()) && !stopped_) {
        stopped_ = true;
        probe_.stop();
    }
}

void Watchdog::scan_console() {
    const std::uint64_t size = probe_.console_size();
    budget_.observe_console(size);
    if (size <= console_offset_) {
        return;
    }
    const std::string fresh = probe_.console_bytes(console_offset_, console_read_limit);
    console_offset_ += fresh.size();
    std::size_t start = 0;
    for (;;) {
        const auto end = fresh.find('\n', start);
        const auto piece = std::string_view(fresh).substr(
            start, end == std::string::npos ? std::string::npos : end - start);
        if (console_line_.size() < console_line_limit) {
            console_line_.append(piece.substr(0, console_line_limit - console_line_.size()));
        }
        if (end == std::string::npos) {
            break;
        }
        if (const auto victim = oom_victim(console_line_)) {
            const auto memory = static_cast<double>(budget_.allowance().memory_bytes);
            budget_.record({limits::Limit::memory, memory, memory,
                            "the kernel's OOM killer ended " + *victim});
        }
        console_line_.clear();
        start = end + 1;
    }
}

} // namespace contractor::manager

#pragma once

#include "limits/budget.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace contractor::manager {

// What the host can see of a running worker, and the one thing it does to it. Everything here
// is read from outside the guest (libvirt, the overlay's allocation, the console file QEMU
// writes), so a hostile guest cannot hide its CPU time, its disk or its console's size.
class WorkerProbe {
public:
    virtual ~WorkerProbe() = default;
    // Guest CPU seconds so far, all vCPUs; nullopt when libvirt cannot tell.
    virtual std::optional<double> cpu_seconds() = 0;
    // The worker's disk as the host sees it: the overlay's allocation plus the image's.
    virtual std::uint64_t disk_allocation() = 0;
    // QEMU paused the guest on a failed write to its disk on the host.
    virtual bool paused_on_write_error() = 0;
    // The console log's size, and up to `limit` of its bytes from `offset`.
    virtual std::uint64_t console_size() = 0;
    virtual std::string console_bytes(std::uint64_t offset, std::size_t limit) = 0;
    // Pulls the plug (virDomainDestroy): never waits for the guest.
    virtual void stop() = 0;
};

// The kernel's line when its OOM killer ends a process, "Out of memory: Killed process 154
// (python3) ...", as "python3 (pid 154)"; nullopt for any other line.
std::optional<std::string> oom_victim(std::string_view console_line);

// A thread that looks at the worker every `interval` and feeds the budget: the clock, CPU
// time, the disk, the console's size, an OOM kill on the console, a pause on a host-side write
// error. When a limit is crossed or the job is cancelled it stops the worker at once, whatever
// the job's own thread is blocked on; that thread's next wait (or the connection breaking
// under it) then reports the limit. Stops looking when destroyed.
class Watchdog {
public:
    Watchdog(limits::Budget& budget, WorkerProbe& probe,
             std::chrono::milliseconds interval = std::chrono::milliseconds(250));
    ~Watchdog();
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

    // One look (the thread calls it every interval; tests call it directly).
    void look();
    // Whether it stopped the worker.
    bool stopped_worker() const { return stopped_; }

private:
    void scan_console();

    limits::Budget& budget_;
    WorkerProbe& probe_;
    std::mutex looking_; // look() runs on the watchdog's thread and, once, on the job's
    std::chrono::milliseconds interval_;
    std::uint64_t console_offset_ = 0;
    std::string console_line_; // the console's last, unfinished line (bounded)
    std::atomic<bool> stopped_{false};
    std::mutex sleeping_; // guards ending_, for wake_
    std::condition_variable wake_;
    bool ending_ = false;
    std::thread thread_; // last: started once everything above is ready
};

} // namespace contractor::manager

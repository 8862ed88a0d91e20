#include "manager-agent/watchdog.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>

using namespace contractor;
using namespace contractor::manager;

namespace {

// A worker as the host sees it, set by the test.
class FakeProbe : public WorkerProbe {
public:
    std::mutex mutex;
    double cpu = 0;
    std::uint64_t disk = 0;
    bool paused = false;
    std::string console;
    std::atomic<int> stops{0};

    std::optional<double> cpu_seconds() override {
        const std::lock_guard lock(mutex);
        return cpu;
    }
    std::uint64_t disk_allocation() override {
        const std::lock_guard lock(mutex);
        return disk;
    }
    bool paused_on_write_error() override {
        const std::lock_guard lock(mutex);
        return paused;
    }
    std::uint64_t console_size() override {
        const std::lock_guard lock(mutex);
        return console.size();
    }
    std::string console_bytes(std::uint64_t offset, std::size_t limit) override {
        const std::lock_guard lock(mutex);
        return console.substr(offset, limit);
    }
    void stop() override { ++stops; }
};

limits::Allowance allowance() {
    limits::Allowance allowance;
    allowance.cpu_seconds = 10;
    allowance.disk_bytes = 1000;
    allowance.log_bytes = 100;
    return allowance;
}

} // namespace

TEST_CASE("the kernel's OOM line names the process it killed", "[watchdog]") {
    REQUIRE(oom_victim("[   88.876754] Out of memory: Killed process 154 (python3) "
                       "total-vm:456336kB, anon-rss:443472kB") == "python3 (pid 154)");
    REQUIRE_FALSE(oom_victim("[    1.0] Memory: 480000K/524288K available"));
}

TEST_CASE("the watchdog stops the worker once, when CPU time runs out", "[watchdog]") {
    limits::Budget budget(allowance());
    FakeProbe probe;
    Watchdog watchdog(budget, probe, std::chrono::milliseconds(10));
    watchdog.look();
    REQUIRE(probe.stops == 0);
    {
        const std::lock_guard lock(probe.mutex);
        probe.cpu = 10.3;
    }
    watchdog.look();
    watchdog.look();
    REQUIRE(probe.stops == 1);
    REQUIRE(budget.hit()->limit == limits::Limit::cpu_time);
    REQUIRE(budget.hit()->used == 10.3);
}

TEST_CASE("the watchdog's own thread notices without being asked", "[watchdog]") {
    limits::Budget budget(allowance());
    FakeProbe probe;
    Watchdog watchdog(budget, probe, std::chrono::milliseconds(10));
    {
        const std::lock_guard lock(probe.mutex);
        probe.disk = 950;
    }
    for (int i = 0; i < 200 && probe.stops == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    REQUIRE(probe.stops == 1);
    REQUIRE(budget.hit()->limit == limits::Limit::disk);
}

TEST_CASE("an OOM kill on the console is the memory limit, even split across looks", "[watchdog]") {
    limits::Budget budget(allowance());
    FakeProbe probe;
    Watchdog watchdog(budget, probe, std::chrono::hours(1)); // looks only when asked
    {
        const std::lock_guard lock(probe.mutex);
        probe.console = "boot\n[ 88.8] Out of memory: Killed pro";
    }
    watchdog.look();
    REQUIRE_FALSE(budget.hit());
    {
        const std::lock_guard lock(probe.mutex);
        probe.console += "cess 154 (cc1plus) total-vm:1kB\n";
    }
    watchdog.look();
    REQUIRE(budget.hit()->limit == limits::Limit::memory);
    REQUIRE(budget.hit()->detail.find("cc1plus (pid 154)") != std::string::npos);
    REQUIRE(probe.stops == 1);
}

TEST_CASE("a worker paused on a host write error is stopped, not waited on", "[watchdog]") {
    limits::Budget budget(allowance());
    FakeProbe probe;
    Watchdog watchdog(budget, probe, std::chrono::hours(1));
    {
        const std::lock_guard lock(probe.mutex);
        probe.paused = true;
    }
    watchdog.look();
    REQUIRE(budget.hit()->limit == limits::Limit::disk);
    REQUIRE(probe.stops == 1);
}

TEST_CASE("a console flood is the log-size limit", "[watchdog]") {
    limits::Budget budget(allowance());
    FakeProbe probe;
    Watchdog watchdog(budget, probe, std::chrono::hours(1));
    {
        const std::lock_guard lock(probe.mutex);
        probe.console = std::string(limits::console_floor_bytes + 10, 'x');
    }
    watchdog.look();
    REQUIRE(budget.hit()->limit == limits::Limit::log_size);
    REQUIRE(probe.stops == 1);
}

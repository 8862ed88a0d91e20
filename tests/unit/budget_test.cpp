#include "limits/budget.hpp"
#include "util/cancel.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace contractor;
using namespace contractor::limits;

namespace {

Allowance small() {
    Allowance allowance;
    allowance.timeout = std::chrono::seconds(60);
    allowance.cpu_seconds = 10;
    allowance.memory_bytes = 512ULL << 20;
    allowance.disk_bytes = 1000;
    allowance.log_bytes = 100;
    allowance.export_bytes = 1000;
    return allowance;
}

} // namespace

TEST_CASE("a budget passes what fits and records the first limit crossed", "[budget]") {
    Budget budget(small());
    REQUIRE(budget.charge_log(60) == 60);
    REQUIRE_NOTHROW(budget.check());
    // 40 bytes are left: the chunk is cut there and the limit recorded, not thrown.
    REQUIRE(budget.charge_log(60) == 40);
    REQUIRE(budget.charge_log(10) == 0);
    REQUIRE(budget.hit());
    REQUIRE(budget.hit()->limit == Limit::log_size);
    // A later crossing does not replace the first.
    budget.observe_cpu(11);
    REQUIRE(budget.hit()->limit == Limit::log_size);
    try {
        budget.check();
        FAIL("check() did not throw");
    } catch (const LimitExceeded& exceeded) {
        REQUIRE(exceeded.hit().limit == Limit::log_size);
        REQUIRE(exceeded.hit().allowed == 100);
        REQUIRE(exceeded.hit().used == 120); // everything charged, not only what fitted
        REQUIRE(exceeded.exit_code() == ExitCode::limit_exceeded);
        REQUIRE(std::string(exceeded.what()).rfind("log-size: ", 0) == 0);
    }
}

TEST_CASE("each limit is recorded with what was used against what was allowed", "[budget]") {
    SECTION("cpu-time") {
        Budget budget(small());
        budget.observe_cpu(10); // at the limit is still within it
        REQUIRE_FALSE(budget.hit());
        budget.observe_cpu(10.6);
        REQUIRE(budget.hit()->limit == Limit::cpu_time);
        REQUIRE(budget.hit()->overshoot() > 0.59);
        REQUIRE(budget.hit()->message().find("(0.6 s over)") != std::string::npos);
    }
    SECTION("timeout, checked against the clock given") {
        const auto start = std::chrono::steady_clock::now();
        Budget budget(small(), start);
        budget.observe_clock(start + std::chrono::seconds(59));
        REQUIRE_FALSE(budget.hit());
        budget.observe_clock(start + std::chrono::seconds(62));
        REQUIRE(budget.hit()->limit == Limit::timeout);
        REQUIRE(budget.hit()->used >= 62);
        REQUIRE(budget.hit()->allowed == 60);
    }
    SECTION("timeout, by check() itself once the deadline passed") {
        Budget budget(small(), std::chrono::steady_clock::now() - std::chrono::seconds(61));
        REQUIRE_THROWS_AS(budget.check(), LimitExceeded);
        REQUIRE(budget.hit()->limit == Limit::timeout);
    }
    SECTION("disk, from the host's view, at 90% of the limit") {
        Budget budget(small());
        budget.observe_disk(899);
        REQUIRE_FALSE(budget.hit());
        budget.observe_disk(900);
        REQUIRE(budget.hit()->limit == Limit::disk);
    }
    SECTION("export-size counts every byte of the stream") {
        Budget budget(small());
        REQUIRE(budget.charge_export(512) == 512);
        REQUIRE(budget.charge_export(512) == 488);
        REQUIRE(budget.hit()->limit == Limit::export_size);
        REQUIRE(budget.hit()->used == 1024);
    }
    SECTION("the console, capped at log-size but never below 1 MiB") {
        Budget budget(small());
        budget.observe_console(console_floor_bytes);
        REQUIRE_FALSE(budget.hit());
        budget.observe_console(console_floor_bytes + 1);
        REQUIRE(budget.hit()->limit == Limit::log_size);
    }
    SECTION("memory, recorded from what the watchdog saw") {
        Budget budget(small());
        const double memory = 512.0 * (1 << 20);
        budget.record({Limit::memory, memory, memory, "the kernel's OOM killer ended cc1 (pid 9)"});
        REQUIRE(budget.hit()->message() ==
                "memory: the worker ran out of its 512.0 MiB of memory; the kernel's OOM killer "
                "ended cc1 (pid 9)");
    }
}

TEST_CASE("network-transfer counts both directions; a violation stops the job", "[budget]") {
    Allowance allowance;
    allowance.network_bytes = 1000;
    Budget budget(allowance);
    CHECK(budget.charge_network(600));
    CHECK_FALSE(budget.charge_network(600));
    REQUIRE(budget.hit().has_value());
    CHECK(budget.hit()->limit == Limit::network_transfer);
    CHECK(budget.hit()->used == 1200);
    CHECK_THAT(budget.hit()->message(),
               Catch::Matchers::StartsWith("network-transfer: the worker's network traffic came "
                                           "to 1200 bytes, over its limit of 1000 bytes"));
    CHECK_THROWS_AS(budget.check(), LimitExceeded);
    // The first reason to stop stays.
    budget.record_violation("tried pypi.org");
    CHECK_FALSE(budget.violation().has_value());

    Budget unlimited(Allowance{});
    CHECK(unlimited.charge_network(1ULL << 40));
    CHECK(unlimited.usage().network_bytes == 1ULL << 40);
    unlimited.record_violation("the worker tried to reach pypi.org:443 (https)");
    CHECK_THROWS_WITH(unlimited.check(),
                      "network-violation: the worker tried to reach pypi.org:443 (https)");
    try {
        unlimited.check();
    } catch (const NetworkViolation& violation) {
        CHECK(violation.exit_code() == ExitCode::limit_exceeded);
    }
}

TEST_CASE("a cancelled job stops at the next check, before any limit", "[budget]") {
    Budget budget(small());
    util::request_cancel(15);
    REQUIRE_THROWS_AS(budget.check(), Interrupted);
    util::clear_cancel();
    REQUIRE_NOTHROW(budget.check());
}

TEST_CASE("a budget may be charged from two threads at once", "[budget]") {
    Allowance allowance = small();
    allowance.log_bytes = 1'000'000;
    Budget budget(allowance);
    std::uint64_t passed_a = 0;
    std::uint64_t passed_b = 0;
    std::thread a([&] {
        for (int i = 0; i < 100000; ++i) {
            passed_a += budget.charge_log(7);
        }
    });
    std::thread b([&] {
        for (int i = 0; i < 100000; ++i) {
            passed_b += budget.charge_log(7);
        }
    });
    a.join();
    b.join();
    // Exactly the allowance passed, however the charges interleaved.
    REQUIRE(passed_a + passed_b == 1'000'000);
    REQUIRE(budget.usage().log_bytes == 1'400'000);
}

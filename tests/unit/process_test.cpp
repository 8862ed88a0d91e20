#include "proc/process.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <thread>

using namespace contractor;
using proc::ProcessResult;

TEST_CASE("run_process names every way a child can end", "[proc]") {
    const auto ok = proc::run_process({"sh", "-c", "echo out; echo err >&2"});
    CHECK(ok.state == ProcessResult::State::exited);
    CHECK(ok.succeeded());
    CHECK(ok.output == "out\nerr\n");

    const auto failed = proc::run_process({"sh", "-c", "exit 3"});
    CHECK(failed.state == ProcessResult::State::exited);
    CHECK(failed.exit_code == 3);
    CHECK(failed.describe() == "exited with 3");

    const auto killed = proc::run_process({"sh", "-c", "kill -9 $$"});
    CHECK(killed.state == ProcessResult::State::killed);
    CHECK(killed.signal == 9);

    proc::ProcessOptions options;
    options.timeout = std::chrono::milliseconds(200);
    const auto start = std::chrono::steady_clock::now();
    const auto slow = proc::run_process({"sh", "-c", "sleep 30 & sleep 30"}, options);
    CHECK(slow.state == ProcessResult::State::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));

    const auto missing = proc::run_process({"contractor-no-such-program"});
    CHECK(missing.state == ProcessResult::State::failed_to_start);
    CHECK_THAT(missing.describe(), Catch::Matchers::Contains("not found"));
}

TEST_CASE("children inherit no descriptors but stdin, stdout and stderr", "[proc]") {
    const auto result = proc::run_process({"sh", "-c", "ls /proc/self/fd | wc -l"});
    // 0, 1, 2 and the descriptor ls opens to read the folder.
    CHECK(result.output == "4\n");
}

TEST_CASE("run_checked throws with the command's last lines", "[proc]") {
    REQUIRE_THROWS_WITH(proc::run_checked({"sh", "-c", "echo first; echo last; exit 2"}),
                        "sh exited with 2: first\nlast");
    CHECK(proc::run_checked({"echo", "hello"}) == "hello\n");
}

TEST_CASE("tail_lines keeps the last lines", "[proc]") {
    CHECK(proc::tail_lines("a\nb\nc\n", 2) == "b\nc");
    CHECK(proc::tail_lines("a\nb\nc", 5) == "a\nb\nc");
    CHECK(proc::tail_lines("", 3).empty());
}

TEST_CASE("a background process is killed and reaped with its object", "[proc]") {
    const auto log = std::filesystem::temp_directory_path() / "contractor-background-test.log";
    int pid = 0;
    {
        proc::BackgroundProcess sleeper({"sleep", "30"}, log);
        pid = sleeper.pid();
        CHECK(sleeper.running());
    }
    CHECK(::kill(pid, 0) != 0);
    std::filesystem::remove(log);
}

TEST_CASE("a cancellation stops a running child and throws Interrupted", "[proc]") {
    std::thread canceller([] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        util::request_cancel(SIGINT);
    });
    const auto start = std::chrono::steady_clock::now();
    try {
        proc::run_process({"sleep", "30"});
        FAIL("run_process returned although a cancellation was requested");
    } catch (const Interrupted& interrupted) {
        CHECK(interrupted.signal() == SIGINT);
    }
    canceller.join();
    util::clear_cancel();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

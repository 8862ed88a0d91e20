#include "limits/pump.hpp"

#include <catch2/catch.hpp>

#include <deque>
#include <thread>

using namespace contractor;
using namespace contractor::limits;

namespace {

// A command whose output is scripted: chunks, then the end, or silence for ever.
class ScriptedCommand : public connection::RemoteCommand {
public:
    std::deque<std::string> output;
    bool silent_after_output = false;
    std::string input;
    bool input_closed = false;
    int exit_status = 0;

    std::optional<std::size_t> read(char* data, std::size_t size,
                                    std::chrono::milliseconds timeout) override {
        if (output.empty()) {
            if (silent_after_output) {
                std::this_thread::sleep_for(timeout);
                return std::nullopt;
            }
            return 0;
        }
        std::string& front = output.front();
        const std::size_t count = std::min(size, front.size());
        std::copy_n(front.data(), count, data);
        front.erase(0, count);
        if (front.empty()) {
            output.pop_front();
        }
        return count;
    }
    void write(const char* data, std::size_t size) override { input.append(data, size); }
    void close_write() override { input_closed = true; }
    int wait() override { return exit_status; }
    void terminate() override {}
};

Allowance allowance_with(std::uint64_t log_bytes, std::uint64_t export_bytes,
                         std::chrono::seconds timeout = std::chrono::seconds(60)) {
    Allowance allowance;
    allowance.log_bytes = log_bytes;
    allowance.export_bytes = export_bytes;
    allowance.timeout = timeout;
    return allowance;
}

} // namespace

TEST_CASE("the pump passes a command's output and its exit status", "[pump]") {
    Budget budget(allowance_with(100, 100));
    Pump pump(budget);
    ScriptedCommand command;
    command.output = {"hello ", "world\n"};
    command.exit_status = 3;
    std::string seen;
    REQUIRE(pump.drain(command, Meter::log, [&](std::string_view chunk) { seen += chunk; }) == 3);
    REQUIRE(seen == "hello world\n");
    REQUIRE(budget.usage().log_bytes == 12);
    REQUIRE(budget.usage().export_bytes == 0);
}

TEST_CASE("the pump stops a flood at log-size and passes nothing beyond it", "[pump]") {
    Budget budget(allowance_with(1000, 1 << 30));
    Pump pump(budget);
    ScriptedCommand command;
    for (int i = 0; i < 100; ++i) {
        command.output.push_back(std::string(64, 'x'));
    }
    std::string seen;
    REQUIRE_THROWS_AS(
        pump.drain(command, Meter::log, [&](std::string_view chunk) { seen += chunk; }),
        LimitExceeded);
    REQUIRE(seen.size() == 1000);
    REQUIRE(budget.hit()->limit == Limit::log_size);
    // It stopped reading at the crossing: most of the flood was never read.
    REQUIRE(command.output.size() > 80);
}

TEST_CASE("stderr is charged to the same log budget as stdout", "[pump]") {
    Budget budget(allowance_with(10, 1 << 30));
    Pump pump(budget);
    std::string errors;
    const auto sink = pump.stderr_to([&](std::string_view chunk) { errors += chunk; });
    sink("0123456");
    sink("789abc"); // crosses: cut, recorded, not thrown (it runs inside a read)
    REQUIRE(errors == "0123456789");
    REQUIRE(budget.hit()->limit == Limit::log_size);
    ScriptedCommand command;
    command.output = {"more"};
    REQUIRE_THROWS_AS(pump.drain(command, Meter::log, [](std::string_view) {}), LimitExceeded);
}

TEST_CASE("the returning stream is counted whole against export-size", "[pump]") {
    Budget budget(allowance_with(1 << 30, 4096));
    Pump pump(budget);
    ScriptedCommand command;
    // Eleven 512-byte headers of empty files: no content at all, still over 4 KiB.
    for (int i = 0; i < 11; ++i) {
        command.output.push_back(std::string(512, '\0'));
    }
    std::uint64_t passed = 0;
    REQUIRE_THROWS_AS(pump.drain(command, Meter::export_stream,
                                 [&](std::string_view chunk) { passed += chunk.size(); }),
                      LimitExceeded);
    REQUIRE(passed == 4096);
    REQUIRE(budget.hit()->limit == Limit::export_size);
    REQUIRE(budget.usage().log_bytes == 0);
}

TEST_CASE("a stream read another way is charged to export-size like a command's", "[pump]") {
    Budget budget(allowance_with(1000, 100));
    Pump pump(budget);
    std::string seen;
    const auto sink = [&](std::string_view chunk) {
        seen += chunk;
    };
    pump.pass(std::string(60, 'a'), Meter::export_stream, sink);
    REQUIRE_THROWS_AS(pump.pass(std::string(60, 'b'), Meter::export_stream, sink), LimitExceeded);
    REQUIRE(seen.size() == 100);
    REQUIRE(budget.hit()->limit == Limit::export_size);
    REQUIRE(budget.usage().log_bytes == 0);
}

TEST_CASE("a silent command is given up on at the deadline", "[pump]") {
    // The deadline is one second away; the command never says anything.
    Budget budget(allowance_with(100, 100, std::chrono::seconds(1)));
    Pump pump(budget);
    ScriptedCommand command;
    command.silent_after_output = true;
    const auto start = std::chrono::steady_clock::now();
    REQUIRE_THROWS_AS(pump.drain(command, Meter::export_stream, [](std::string_view) {}),
                      LimitExceeded);
    const auto waited = std::chrono::steady_clock::now() - start;
    REQUIRE(budget.hit()->limit == Limit::timeout);
    // At most one slice past the deadline.
    REQUIRE(waited < std::chrono::seconds(1) + 2 * Pump::slice);
}

TEST_CASE("the pump feeds input until its source ends, checking the budget", "[pump]") {
    Budget budget(allowance_with(100, 100));
    Pump pump(budget);
    ScriptedCommand command;
    std::deque<std::optional<std::string>> pieces = {std::string("ab"), std::string(),
                                                     std::string("cd"), std::nullopt};
    pump.feed(command, [&](std::chrono::milliseconds) {
        auto piece = pieces.front();
        pieces.pop_front();
        return piece;
    });
    REQUIRE(command.input == "abcd");
    REQUIRE(command.input_closed);
}

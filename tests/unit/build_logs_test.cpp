#include "cli/build_logs.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace contractor;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

TEST_CASE("build logs past the count or the age are removed, the current one never",
          "[build-logs]") {
    TemporaryDirectory scratch;
    const auto now = fs::file_time_type::clock::now();
    const auto make = [&](const std::string& name, std::chrono::hours age) {
        const auto path = scratch.path() / name;
        std::ofstream(path) << name;
        fs::last_write_time(path, now - age);
        return path;
    };
    const auto current = make("current.log", std::chrono::hours(0));
    const auto recent = make("recent.log", std::chrono::hours(1));
    const auto older = make("older.log", std::chrono::hours(2));
    const auto oldest = make("oldest.log", std::chrono::hours(3));
    const auto ancient = make("ancient.log", std::chrono::hours(24 * 40));
    const auto other = make("notes.txt", std::chrono::hours(24 * 40));

    SECTION("by count: the current log and the two newest others") {
        const auto removed = cli::prune_logs(scratch.path(), {3, 365 * 86400}, current, now);
        REQUIRE(removed.size() == 2);
        REQUIRE(fs::exists(current));
        REQUIRE(fs::exists(recent));
        REQUIRE(fs::exists(older));
        REQUIRE_FALSE(fs::exists(oldest));
        REQUIRE_FALSE(fs::exists(ancient));
    }
    SECTION("by age: nothing older than 30 days") {
        const auto removed = cli::prune_logs(scratch.path(), {100, 30 * 86400}, current, now);
        REQUIRE(removed == std::vector<fs::path>{ancient});
        REQUIRE(fs::exists(oldest));
    }
    SECTION("keep: 1 keeps only the current log; the current log is kept even when old") {
        fs::last_write_time(current, now - std::chrono::hours(24 * 400));
        cli::prune_logs(scratch.path(), {1, 86400}, current, now);
        REQUIRE(fs::exists(current));
        REQUIRE_FALSE(fs::exists(recent));
    }
    REQUIRE(fs::exists(other)); // only *.log files are build logs
}

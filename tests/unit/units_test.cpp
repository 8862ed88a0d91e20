// Tests for spec/units.hpp: sizes, durations and rates as a spec writes them.
#include "spec/units.hpp"

#include <catch2/catch.hpp>

#include <cstdint>

using Catch::Matchers::Contains;
using contractor::spec::format_duration;
using contractor::spec::format_rate;
using contractor::spec::format_size;
using contractor::spec::parse_duration;
using contractor::spec::parse_rate;
using contractor::spec::parse_size;
using contractor::spec::UnitError;

namespace {

constexpr std::uint64_t KiB = 1024;
constexpr std::uint64_t MiB = 1024 * KiB;
constexpr std::uint64_t GiB = 1024 * MiB;
constexpr std::uint64_t TiB = 1024 * GiB;

} // namespace

TEST_CASE("parse_size: binary units", "[units]") {
    CHECK(parse_size("512MiB") == 512 * MiB);
    CHECK(parse_size("2G") == 2 * GiB);
    CHECK(parse_size("2GiB") == 2 * GiB);
    CHECK(parse_size("4K") == 4 * KiB);
    CHECK(parse_size("3M") == 3 * MiB);
    CHECK(parse_size("1T") == TiB);
    CHECK(parse_size("1TiB") == TiB);
    CHECK(parse_size("1.5KiB") == 1536);
    CHECK(parse_size("0.5G") == 512 * MiB);
    CHECK(parse_size(".5G") == 512 * MiB);
}

TEST_CASE("parse_size: decimal units and bytes", "[units]") {
    CHECK(parse_size("1GB") == 1'000'000'000);
    CHECK(parse_size("1KB") == 1000);
    CHECK(parse_size("2MB") == 2'000'000);
    CHECK(parse_size("1TB") == 1'000'000'000'000);
    CHECK(parse_size("100B") == 100);
    CHECK(parse_size("100 bytes") == 100);
    CHECK(parse_size("1 byte") == 1);
    CHECK(parse_size("0B") == 0);
}

TEST_CASE("parse_size: spelling", "[units]") {
    CHECK(parse_size("512 MiB") == 512 * MiB);
    CHECK(parse_size("  1 GiB  ") == GiB);
    CHECK(parse_size("1gib") == GiB);
    CHECK(parse_size("+1G") == GiB);
    // Fractions of a byte are dropped.
    CHECK(parse_size("1.0001KiB") == 1024);
}

TEST_CASE("parse_size: errors", "[units]") {
    REQUIRE_THROWS_AS(parse_size("512"), UnitError);
    REQUIRE_THROWS_WITH(parse_size("512"), "'512' has no unit; write e.g. '512MiB' or '512G'");
    REQUIRE_THROWS_WITH(parse_size("2 parsecs"), Contains("unknown size unit 'parsecs'"));
    REQUIRE_THROWS_AS(parse_size("1 EiB"), UnitError);
    REQUIRE_THROWS_AS(parse_size("1GiB/s"), UnitError);
    REQUIRE_THROWS_WITH(parse_size("-1G"), "a size cannot be negative");
    REQUIRE_THROWS_WITH(parse_size("GiB"), "expected a number at the start of 'GiB'");
    REQUIRE_THROWS_AS(parse_size(""), UnitError);
    REQUIRE_THROWS_AS(parse_size("."), UnitError);
    REQUIRE_THROWS_AS(parse_size("1.2.3G"), UnitError);
    REQUIRE_THROWS_WITH(parse_size("5000000TiB"), "'5000000TiB' is too large for a size");
}

TEST_CASE("parse_duration", "[units]") {
    CHECK(parse_duration("90s") == 90);
    CHECK(parse_duration("30m") == 1800);
    CHECK(parse_duration("1h") == 3600);
    CHECK(parse_duration("2d") == 172800);
    CHECK(parse_duration("1h30m") == 5400);
    CHECK(parse_duration("1h 30m") == 5400);
    CHECK(parse_duration("1d2h3m4s") == 93784);
    CHECK(parse_duration("1.5h") == 5400);
    CHECK(parse_duration("90") == 90);
    CHECK(parse_duration("5 minutes") == 300);
    CHECK(parse_duration("2 hours 10 sec") == 7210);
    CHECK(parse_duration("1H") == 3600);
}

TEST_CASE("parse_duration: errors", "[units]") {
    REQUIRE_THROWS_AS(parse_duration("90x"), UnitError);
    REQUIRE_THROWS_WITH(parse_duration("5 fortnights"),
                        "cannot read '5 fortnights' as a duration; use s, m, h or d, e.g. "
                        "'90s', '30m', '1h30m'");
    // Only a number on its own is seconds; a trailing bare number is a missing unit.
    REQUIRE_THROWS_AS(parse_duration("1h30"), UnitError);
    REQUIRE_THROWS_WITH(parse_duration("-5s"), "a duration cannot be negative");
    REQUIRE_THROWS_AS(parse_duration(""), UnitError);
    REQUIRE_THROWS_AS(parse_duration("h"), UnitError);
    REQUIRE_THROWS_AS(parse_duration("1ms"), UnitError);
    REQUIRE_THROWS_WITH(parse_duration("99999999999999999999d"), Contains("is too large"));
}

TEST_CASE("parse_rate: bits per second, powers of 1000", "[units]") {
    CHECK(parse_rate("10Mbit/s") == 1'250'000);
    CHECK(parse_rate("10 Mbit/s") == 1'250'000);
    CHECK(parse_rate("1Gbit/s") == 125'000'000);
    CHECK(parse_rate("100kbit/s") == 12'500);
    CHECK(parse_rate("8bit/s") == 1);
    CHECK(parse_rate("12bit/s") == 1);
    CHECK(parse_rate("20Mbps") == 2'500'000);
}

TEST_CASE("parse_rate: bytes per second", "[units]") {
    CHECK(parse_rate("1MiB/s") == 1'048'576);
    CHECK(parse_rate("1KiB/s") == 1024);
    CHECK(parse_rate("2GiB/s") == 2 * GiB);
    CHECK(parse_rate("1MB/s") == 1'000'000);
    CHECK(parse_rate("5KB/s") == 5'000);
    CHECK(parse_rate("100B/s") == 100);
}

TEST_CASE("parse_rate: errors", "[units]") {
    REQUIRE_THROWS_WITH(parse_rate("1bit/s"), "'1bit/s' is less than one byte per second");
    REQUIRE_THROWS_WITH(parse_rate("1000"),
                        "'1000' has no unit; write e.g. '10Mbit/s' or '1MiB/s'");
    // "mb/s" could be megabits or megabytes: only an upper-case B says bytes.
    REQUIRE_THROWS_WITH(parse_rate("1mb/s"), Contains("unknown rate unit 'mb/s'"));
    REQUIRE_THROWS_AS(parse_rate("1Mb/s"), UnitError);
    REQUIRE_THROWS_AS(parse_rate("1kb/s"), UnitError);
    REQUIRE_THROWS_AS(parse_rate("1M/s"), UnitError);
    REQUIRE_THROWS_AS(parse_rate("1MiB"), UnitError);
    REQUIRE_THROWS_AS(parse_rate("1 furlong/s"), UnitError);
    REQUIRE_THROWS_WITH(parse_rate("-1MB/s"), "a rate cannot be negative");
}

// The same rule for the "ps" spelling: an upper-case B says bytes, so 1MBps is not 1 megabit.
TEST_CASE("parse_rate does not read 1MBps as megabits", "[units]") {
    std::uint64_t rate = 0;
    try {
        rate = parse_rate("1MBps");
    } catch (const UnitError&) {
        SUCCEED("rejected as ambiguous");
        return;
    }
    CHECK(rate == 1'000'000);
}

TEST_CASE("format_size", "[units]") {
    CHECK(format_size(0) == "0 B");
    CHECK(format_size(1023) == "1023 B");
    CHECK(format_size(1024) == "1 KiB");
    CHECK(format_size(1536) == "1.50 KiB");
    CHECK(format_size(512 * MiB) == "512 MiB");
    CHECK(format_size(GiB) == "1 GiB");
    CHECK(format_size(8 * GiB) == "8 GiB");
    CHECK(format_size(2048 * TiB) == "2048 TiB");
    CHECK(parse_size(format_size(1536)) == 1536);
}

TEST_CASE("format_duration", "[units]") {
    CHECK(format_duration(0) == "0s");
    CHECK(format_duration(59) == "59s");
    CHECK(format_duration(90) == "1m 30s");
    CHECK(format_duration(3600) == "1h");
    CHECK(format_duration(5400) == "1h 30m");
    CHECK(format_duration(7200) == "2h");
    CHECK(format_duration(93784) == "1d 2h 3m 4s");
    CHECK(parse_duration(format_duration(93784)) == 93784);
}

TEST_CASE("format_rate writes bits per second, as networks count", "[units]") {
    CHECK(format_rate(0) == "0 bit/s");
    CHECK(format_rate(1) == "8 bit/s");
    CHECK(format_rate(12'500) == "100 kbit/s");
    CHECK(format_rate(1'250'000) == "10 Mbit/s");
    CHECK(format_rate(2'500'000) == "20 Mbit/s");
    CHECK(format_rate(125'000'000) == "1 Gbit/s");
    CHECK(format_rate(1'048'576) == "8.38861 Mbit/s");
    CHECK(parse_rate(format_rate(2'500'000)) == 2'500'000);
}

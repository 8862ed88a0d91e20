// Tests for util/text.hpp: edit distance, typo suggestions and quoting for messages.
#include "util/text.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <string_view>

using contractor::util::closest_match;
using contractor::util::edit_distance;
using contractor::util::quoted;

namespace {

constexpr std::array<std::string_view, 10> spec_keys = {
    "worker-image", "source",  "workspace", "build",  "install",
    "ansible",      "exclude", "env",       "limits", "network"};

} // namespace

TEST_CASE("edit_distance counts insertions, deletions and substitutions", "[text]") {
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("build", "build") == 0);
    CHECK(edit_distance("", "abc") == 3);
    CHECK(edit_distance("abc", "") == 3);
    CHECK(edit_distance("kitten", "sitting") == 3);
    CHECK(edit_distance("flaw", "lawn") == 2);
    // A transposition is two substitutions in plain Levenshtein distance.
    CHECK(edit_distance("biuld", "build") == 2);
    CHECK(edit_distance("memroy", "memory") == 2);
    CHECK(edit_distance("limit", "limits") == 1);
}

TEST_CASE("edit_distance is symmetric", "[text]") {
    CHECK(edit_distance("workspace", "worker-image") == edit_distance("worker-image", "workspace"));
    CHECK(edit_distance("abc", "yabd") == edit_distance("yabd", "abc"));
    CHECK(edit_distance("abc", "yabd") == 2);
}

TEST_CASE("closest_match suggests the key a typo was meant to be", "[text]") {
    CHECK(closest_match("biuld", spec_keys) == std::optional<std::string>("build"));
    CHECK(closest_match("limit", spec_keys) == std::optional<std::string>("limits"));
    CHECK(closest_match("workspce", spec_keys) == std::optional<std::string>("workspace"));
    CHECK(closest_match("worker-imgae", spec_keys) == std::optional<std::string>("worker-image"));
    CHECK(closest_match("instal", spec_keys) == std::optional<std::string>("install"));
}

TEST_CASE("closest_match prefers the nearest candidate, the first on a tie", "[text]") {
    constexpr std::array<std::string_view, 3> candidates = {"cat", "cut", "cart"};
    CHECK(closest_match("cat", candidates) == std::optional<std::string>("cat"));
    CHECK(closest_match("cot", candidates) == std::optional<std::string>("cat"));
    CHECK(closest_match("carts", candidates) == std::optional<std::string>("cart"));
}

TEST_CASE("closest_match does not suggest unrelated words", "[text]") {
    CHECK_FALSE(closest_match("compiler", spec_keys).has_value());
    CHECK_FALSE(closest_match("xyzzy", spec_keys).has_value());
    CHECK_FALSE(closest_match("documentation", spec_keys).has_value());
    CHECK_FALSE(closest_match("", std::span<const std::string_view>{}).has_value());
    constexpr std::array<std::string_view, 1> one = {"dump"};
    CHECK_FALSE(closest_match("frobnicate", one).has_value());
}

TEST_CASE("closest_match allows more edits for longer words", "[text]") {
    // Two edits are always allowed, or a third of the typed word's length when that is more.
    constexpr std::array<std::string_view, 1> long_key = {"network-rate"};
    CHECK(closest_match("netwrk-rte", long_key) == std::optional<std::string>("network-rate"));
    CHECK(closest_match("nework-rt", long_key) == std::optional<std::string>("network-rate"));
    CHECK_FALSE(closest_match("nwrk-rt", long_key).has_value());
    constexpr std::array<std::string_view, 1> source = {"source"};
    CHECK(closest_match("srce", source) == std::optional<std::string>("source"));
    CHECK_FALSE(closest_match("srcx", source).has_value());
    constexpr std::array<std::string_view, 1> short_key = {"env"};
    CHECK(closest_match("ev", short_key) == std::optional<std::string>("env"));
    CHECK_FALSE(closest_match("path", short_key).has_value());
}

TEST_CASE("quoted wraps a word in single quotes", "[text]") {
    CHECK(quoted("build") == "'build'");
    CHECK(quoted("") == "''");
    CHECK(quoted("it's") == "'it's'");
    CHECK(quoted("caf\xc3\xa9") == "'caf\xc3\xa9'");
}

TEST_CASE("quoted escapes control characters", "[text]") {
    CHECK(quoted("a\nb") == "'a\\x0ab'");
    CHECK(quoted("tab\there") == "'tab\\x09here'");
    CHECK(quoted("bell\a") == "'bell\\x07'");
    CHECK(quoted("del\x7f") == "'del\\x7f'");
    CHECK(quoted("esc\x1b[31m") == "'esc\\x1b[31m'");
    CHECK(quoted(std::string_view("nul\0x", 5)) == "'nul\\x00x'");
    // Bytes that are not UTF-8, and C1 controls written as UTF-8 (CSI to some terminals).
    CHECK(quoted("bad\xff") == "'bad\\xff'");
    CHECK(quoted("c1\xc2\x9b") == "'c1\\xc2\\x9b'");
}

// Tests for yaml/scalar.hpp. Every expected value was checked against PyYAML 6.0 with
// `/usr/bin/python3 -c 'import yaml; print(yaml.safe_load("k: TEXT"))'`; dates and times as
// their isoformat(), infinities and NaN as the strings the header documents.
#include "yaml/scalar.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>

using contractor::yaml::construct_scalar;
using contractor::yaml::json_key;
using contractor::yaml::resolve_plain_scalar;
using contractor::yaml::scalar_type_for_tag;
using contractor::yaml::ScalarError;
using contractor::yaml::ScalarType;
using Json = nlohmann::ordered_json;

namespace {

// What yaml.safe_load makes of the plain scalar `text`.
Json load_plain(const std::string& text) {
    return construct_scalar(resolve_plain_scalar(text), text);
}

} // namespace

TEST_CASE("YAML 1.1 booleans", "[scalar]") {
    for (const char* text : {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"}) {
        INFO(text);
        CHECK(resolve_plain_scalar(text) == ScalarType::boolean);
        CHECK(load_plain(text) == Json(true));
    }
    for (const char* text : {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"}) {
        INFO(text);
        CHECK(resolve_plain_scalar(text) == ScalarType::boolean);
        CHECK(load_plain(text) == Json(false));
    }
    SECTION("y, n and mixed case are strings") {
        for (const char* text : {"y", "Y", "n", "N", "tRUE", "yES", "oN"}) {
            INFO(text);
            CHECK(resolve_plain_scalar(text) == ScalarType::string);
            CHECK(load_plain(text) == Json(text));
        }
    }
    SECTION("an explicit !!bool accepts only the same words, in any case") {
        CHECK(construct_scalar(ScalarType::boolean, "yEs") == Json(true));
        REQUIRE_THROWS_AS(construct_scalar(ScalarType::boolean, "y"), ScalarError);
        REQUIRE_THROWS_WITH(construct_scalar(ScalarType::boolean, "1"),
                            "cannot read '1' as a boolean");
    }
}

TEST_CASE("YAML 1.1 nulls", "[scalar]") {
    for (const char* text : {"", "~", "null", "Null", "NULL"}) {
        INFO(text);
        CHECK(resolve_plain_scalar(text) == ScalarType::null);
        CHECK(load_plain(text).is_null());
    }
    CHECK(resolve_plain_scalar("nULL") == ScalarType::string);
    CHECK(resolve_plain_scalar("none") == ScalarType::string);
    // !!null ignores the text, as SafeConstructor.construct_yaml_null does.
    CHECK(construct_scalar(ScalarType::null, "anything").is_null());
}

TEST_CASE("YAML 1.1 integers", "[scalar]") {
    CHECK(load_plain("0") == Json(0));
    CHECK(load_plain("-0") == Json(0));
    CHECK(load_plain("+12") == Json(12));
    CHECK(load_plain("0755") == Json(493));
    CHECK(load_plain("010") == Json(8));
    CHECK(load_plain("-010") == Json(-8));
    CHECK(load_plain("0x1F") == Json(31));
    CHECK(load_plain("-0x1F") == Json(-31));
    CHECK(load_plain("0x_1F") == Json(31));
    CHECK(load_plain("0x1f_FF") == Json(8191));
    CHECK(load_plain("0b101") == Json(5));
    CHECK(load_plain("1_000") == Json(1000));
    CHECK(load_plain("1__0") == Json(10));
    CHECK(load_plain("190:20:30") == Json(685230));
    CHECK(load_plain("12:30") == Json(750));
    CHECK(load_plain("-1:30") == Json(-90));
    CHECK(resolve_plain_scalar("0755") == ScalarType::integer);
    CHECK(resolve_plain_scalar("190:20:30") == ScalarType::integer);
    CHECK(load_plain("0755").is_number_integer());

    SECTION("look-alikes that PyYAML keeps as strings") {
        for (const char* text :
             {"08", "0128", "0o17", "0b", "0b2", "0x", "1,000", "0:30", "1:60", "_1", "1e3"}) {
            INFO(text);
            CHECK(resolve_plain_scalar(text) == ScalarType::string);
            CHECK(load_plain(text) == Json(text));
        }
    }
    SECTION("the 64-bit range") {
        CHECK(load_plain("9223372036854775807") == Json(std::numeric_limits<std::int64_t>::max()));
        CHECK(load_plain("-9223372036854775808") == Json(std::numeric_limits<std::int64_t>::min()));
        CHECK(load_plain("18446744073709551615") ==
              Json(std::numeric_limits<std::uint64_t>::max()));
        CHECK(load_plain("9223372036854775808").dump() == "9223372036854775808");
    }
    SECTION("values beyond 64 bits are refused") {
        REQUIRE_THROWS_AS(load_plain("18446744073709551616"), ScalarError);
        REQUIRE_THROWS_WITH(load_plain("99999999999999999999"),
                            "integer '99999999999999999999' does not fit in 64 bits");
        REQUIRE_THROWS_AS(load_plain("-9223372036854775809"), ScalarError);
        REQUIRE_THROWS_AS(load_plain("0x1_0000_0000_0000_0000"), ScalarError);
    }
    SECTION("an explicit !!int of a malformed value throws") {
        REQUIRE_THROWS_WITH(construct_scalar(ScalarType::integer, "0b_"),
                            "cannot read '0b_' as an integer");
        REQUIRE_THROWS_AS(construct_scalar(ScalarType::integer, "twelve"), ScalarError);
        REQUIRE_THROWS_AS(construct_scalar(ScalarType::integer, ""), ScalarError);
    }
}

// PyYAML hands "0o17" to int(value, 8), which accepts Python's own 0o prefix.
TEST_CASE("an explicit !!int 0o17 is 15, as in PyYAML", "[scalar]") {
    CHECK(construct_scalar(ScalarType::integer, "0o17") == Json(15));
    CHECK(construct_scalar(ScalarType::integer, "0O17") == Json(15));
}

TEST_CASE("YAML 1.1 floats", "[scalar]") {
    CHECK(load_plain("1.5") == Json(1.5));
    CHECK(load_plain("1.") == Json(1.0));
    CHECK(load_plain("0.") == Json(0.0));
    CHECK(load_plain(".5") == Json(0.5));
    CHECK(load_plain("09.5") == Json(9.5));
    CHECK(load_plain("1_2.5_0") == Json(12.5));
    CHECK(load_plain("1.0e+3") == Json(1000.0));
    CHECK(load_plain("1.5E-2") == Json(0.015));
    CHECK(load_plain(".1e+1") == Json(1.0));
    CHECK(load_plain("1.e+1") == Json(10.0));
    CHECK(load_plain("1:30.5") == Json(90.5));
    CHECK(load_plain("1:2:3.5") == Json(3723.5));
    CHECK(resolve_plain_scalar("1.5") == ScalarType::floating);
    CHECK(load_plain("1.").is_number_float());
    CHECK(load_plain("1.0").dump() == "1.0");

    SECTION("look-alikes that PyYAML keeps as strings") {
        // The YAML 1.1 regex wants a sign and digits before the point, and a signed exponent.
        for (const char* text : {"-.5", "+.5", "1e3", "1.0e3", "1e400", ".", "._", "1,5"}) {
            INFO(text);
            CHECK(resolve_plain_scalar(text) == ScalarType::string);
            CHECK(load_plain(text) == Json(text));
        }
    }
    SECTION("infinities and NaN become strings, spelled the canonical way") {
        CHECK(load_plain(".inf") == Json(".inf"));
        CHECK(load_plain("+.INF") == Json(".inf"));
        CHECK(load_plain("-.Inf") == Json("-.inf"));
        CHECK(load_plain(".NaN") == Json(".nan"));
        CHECK(load_plain(".NAN") == Json(".nan"));
        CHECK(resolve_plain_scalar(".NaN") == ScalarType::floating);
        CHECK(load_plain("1.0e+400") == Json(".inf"));
    }
    SECTION("an explicit !!float reads what Python's float() reads") {
        CHECK(construct_scalar(ScalarType::floating, "1e3") == Json(1000.0));
        CHECK(construct_scalar(ScalarType::floating, "-.5") == Json(-0.5));
        CHECK(construct_scalar(ScalarType::floating, "12") == Json(12.0));
        REQUIRE_THROWS_WITH(construct_scalar(ScalarType::floating, "0x10"),
                            "cannot read '0x10' as a number");
        REQUIRE_THROWS_AS(construct_scalar(ScalarType::floating, ""), ScalarError);
    }
}

TEST_CASE("YAML 1.1 timestamps become isoformat() strings", "[scalar]") {
    CHECK(resolve_plain_scalar("2001-12-14") == ScalarType::timestamp);
    CHECK(load_plain("2001-12-14") == Json("2001-12-14"));
    CHECK(load_plain("2024-02-29") == Json("2024-02-29"));
    CHECK(load_plain("2001-12-14t21:59:43.10-05:00") == Json("2001-12-14T21:59:43.100000-05:00"));
    CHECK(load_plain("2001-12-14 21:59:43.10") == Json("2001-12-14T21:59:43.100000"));
    CHECK(load_plain("2001-12-14T21:59:43Z") == Json("2001-12-14T21:59:43+00:00"));
    CHECK(load_plain("2001-1-1 1:02:03") == Json("2001-01-01T01:02:03"));
    CHECK(load_plain("2001-12-14 21:59:43 -5") == Json("2001-12-14T21:59:43-05:00"));
    CHECK(load_plain("2001-12-14 21:59:43 +05:30") == Json("2001-12-14T21:59:43+05:30"));
    CHECK(load_plain("2001-12-14 21:59:43-0:30") == Json("2001-12-14T21:59:43-00:30"));

    SECTION("a zero fraction is dropped, a long one cut to microseconds") {
        CHECK(load_plain("2001-12-14T21:59:43.0Z") == Json("2001-12-14T21:59:43+00:00"));
        CHECK(load_plain("2001-12-14T21:59:43.0000001Z") == Json("2001-12-14T21:59:43+00:00"));
        CHECK(load_plain("2001-12-14 21:59:43.1234567 +1") ==
              Json("2001-12-14T21:59:43.123456+01:00"));
    }
    SECTION("a date alone needs two-digit month and day") {
        CHECK(resolve_plain_scalar("2001-1-1") == ScalarType::string);
        CHECK(construct_scalar(ScalarType::timestamp, "2001-1-1") == Json("2001-01-01"));
    }
    SECTION("dates and times that do not exist throw") {
        REQUIRE_THROWS_WITH(load_plain("2024-02-30"), "'2024-02-30' is not a valid date");
        REQUIRE_THROWS_AS(load_plain("2023-02-29"), ScalarError);
        REQUIRE_THROWS_AS(load_plain("2001-13-01"), ScalarError);
        REQUIRE_THROWS_AS(load_plain("0000-01-01"), ScalarError);
        REQUIRE_THROWS_WITH(load_plain("2001-12-14 24:00:00"),
                            "'2001-12-14 24:00:00' is not a valid time of day");
        REQUIRE_THROWS_AS(load_plain("2001-12-14 23:59:60"), ScalarError);
        REQUIRE_THROWS_WITH(load_plain("2001-12-14 21:59:43 +24"),
                            "'2001-12-14 21:59:43 +24' has a time zone offset of a day or more");
        REQUIRE_THROWS_AS(construct_scalar(ScalarType::timestamp, "yesterday"), ScalarError);
    }
}

TEST_CASE("merge and value keys", "[scalar]") {
    CHECK(resolve_plain_scalar("<<") == ScalarType::merge);
    CHECK(resolve_plain_scalar("=") == ScalarType::value);
    CHECK(resolve_plain_scalar("<") == ScalarType::string);
    CHECK(resolve_plain_scalar("==") == ScalarType::string);
    // Neither has a constructor of its own: yaml.safe_load fails on them as values.
    REQUIRE_THROWS_AS(construct_scalar(ScalarType::merge, "<<"), ScalarError);
    REQUIRE_THROWS_WITH(construct_scalar(ScalarType::value, "="),
                        "'=' cannot stand alone as a value in YAML 1.1 (quote it)");
}

TEST_CASE("strings stay as written", "[scalar]") {
    CHECK(resolve_plain_scalar("make check") == ScalarType::string);
    CHECK(construct_scalar(ScalarType::string, "yes") == Json("yes"));
    CHECK(construct_scalar(ScalarType::string, "0755") == Json("0755"));
    CHECK(construct_scalar(ScalarType::string, "") == Json(""));
}

TEST_CASE("scalar_type_for_tag knows the safe loader's scalar tags", "[scalar]") {
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:str") == ScalarType::string);
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:int") == ScalarType::integer);
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:float") == ScalarType::floating);
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:bool") == ScalarType::boolean);
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:null") == ScalarType::null);
    CHECK(scalar_type_for_tag("tag:yaml.org,2002:timestamp") == ScalarType::timestamp);
    CHECK_FALSE(scalar_type_for_tag("tag:yaml.org,2002:binary").has_value());
    CHECK_FALSE(scalar_type_for_tag("tag:yaml.org,2002:map").has_value());
    CHECK_FALSE(scalar_type_for_tag("!vault").has_value());
    CHECK_FALSE(scalar_type_for_tag("str").has_value());
    CHECK_FALSE(scalar_type_for_tag("").has_value());
}

TEST_CASE("json_key writes keys as json.dumps does", "[scalar]") {
    CHECK(json_key(Json("build")) == "build");
    CHECK(json_key(Json("")) == "");
    CHECK(json_key(Json(1)) == "1");
    CHECK(json_key(Json(-7)) == "-7");
    CHECK(json_key(Json(std::numeric_limits<std::uint64_t>::max())) == "18446744073709551615");
    CHECK(json_key(Json(true)) == "true");
    CHECK(json_key(Json(false)) == "false");
    CHECK(json_key(Json(nullptr)) == "null");
    CHECK(json_key(Json(1.5)) == "1.5");
    CHECK(json_key(Json(1.0)) == "1.0");
    CHECK(json_key(Json(-2.5)) == "-2.5");
    CHECK(json_key(Json(1e16)) == "1e+16");
    CHECK(json_key(Json(1e-5)) == "1e-05");
}

// Python's repr(1e15) is '1000000000000000.0'; it switches to exponents at 1e16.
TEST_CASE("json_key writes 1e15 as Python's repr does", "[scalar]") {
    CHECK(json_key(Json(1e15)) == "1000000000000000.0");
}

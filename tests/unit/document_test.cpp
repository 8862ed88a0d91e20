// Tests for yaml/document.hpp. Expected values were checked against PyYAML 6.0's
// yaml.safe_load followed by json.dumps.
#include "temporary_directory.hpp"
#include "yaml/document.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

using contractor::UsageError;
using contractor::yaml::Document;
using contractor::yaml::LoadLimits;
using contractor::yaml::Mark;
using contractor::yaml::parse_document;
using contractor::yaml::SourceError;
using Json = nlohmann::ordered_json;
using Catch::Matchers::Contains;

namespace {

Document parse(const std::string& text) {
    return parse_document(text, "f.yaml");
}

// The SourceError that parsing `text` throws, for checks on its position and hint.
SourceError parse_error(const std::string& text, LoadLimits limits = {}) {
    try {
        parse_document(text, "f.yaml", limits);
    } catch (const SourceError& error) {
        return error;
    }
    FAIL("no SourceError for: " << text);
    throw std::logic_error("unreachable");
}

std::string position(Mark mark) {
    return std::to_string(mark.line) + ":" + std::to_string(mark.column);
}

} // namespace

TEST_CASE("parse_document reads values as yaml.safe_load does", "[document]") {
    const Document document = parse("a: \"x\\ty\"\nb: 0x1F\nc: [yes, ~, 1.5, 2001-12-14]\n"
                                    "d: |\n  line1\n  line2\ne: >\n  folded\n  text\n"
                                    "f: !!str 12\ng:\n");
    CHECK(document.file == "f.yaml");
    CHECK(document.value == Json::parse(R"({"a": "x\ty", "b": 31,
        "c": [true, null, 1.5, "2001-12-14"], "d": "line1\nline2\n", "e": "folded text\n",
        "f": "12", "g": null})"));
    CHECK(document.value.begin().key() == "a");
    CHECK(document.duplicate_keys.empty());
}

TEST_CASE("an empty document is null", "[document]") {
    CHECK(parse("").value.is_null());
    CHECK(parse("# only a comment\n").value.is_null());
    CHECK(parse("---\n").value.is_null());
    CHECK(parse("a: 1\n...\n").value == Json::parse(R"({"a": 1})"));
}

TEST_CASE("double-quoted escapes come out as UTF-8", "[document]") {
    // yaml-cpp alone would give the lone bytes 0xA0 and 0x85 for \_ and \N.
    CHECK(parse("k: \"a\\_b\"\n").value["k"] == "a\xc2\xa0"
                                                "b");
    CHECK(parse("k: \"a\\Nb\"\n").value["k"] == "a\xc2\x85"
                                                "b");
    CHECK(parse("k: \"\xc3\xa9\\_\\N\xc3\xa9\"\n").value["k"] ==
          "\xc3\xa9\xc2\xa0\xc2\x85\xc3\xa9");
    CHECK(parse("k: \"\\x85\\u00a0\\L\"\n").value["k"] == "\xc2\x85\xc2\xa0\xe2\x80\xa8");
    CHECK(parse("k: \"\\e\\a\\/\\0\"\n").value["k"] == std::string("\x1b\a/\0", 4));
    CHECK(parse("\"\\_\": 1\n").value.begin().key() == "\xc2\xa0");
}

TEST_CASE("merge keys: own keys override, earlier merged mappings win", "[document]") {
    SECTION("one merged mapping") {
        const Document document = parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n");
        CHECK(document.value["m"].dump() == R"({"x":3,"y":2})");
    }
    SECTION("a merge key written after the own key does not override it") {
        const Document document = parse("a: &a {x: 1}\nm:\n  x: 0\n  <<: *a\n");
        CHECK(document.value["m"].dump() == R"({"x":0})");
    }
    SECTION("a list of mappings: the first one wins") {
        const Document document =
            parse("a: &a {x: 1}\nb: &b {x: 2, y: 3}\nm:\n  <<: [*a, *b]\n  z: 0\n");
        CHECK(document.value["m"].dump() == R"({"x":1,"y":3,"z":0})");
    }
    SECTION("two merge keys in one mapping") {
        const Document document =
            parse("a: &a {x: 1}\nb: &b {y: 2}\nm:\n  <<: *a\n  <<: *b\n  x: 3\n");
        CHECK(document.value["m"].dump() == R"({"x":3,"y":2})");
    }
    SECTION("merges nest") {
        const Document document = parse("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nm: {<<: *b, z: 3}\n");
        CHECK(document.value["m"].dump() == R"({"x":1,"y":2,"z":3})");
    }
    SECTION("overriding a merged key is not a duplicate") {
        CHECK(parse("a: &a {x: 1}\nm:\n  <<: *a\n  x: 3\n").duplicate_keys.empty());
    }
    SECTION("a quoted << is an ordinary key") {
        CHECK(parse("\"<<\": 1\n").value.dump() == R"({"<<":1})");
    }
    SECTION("a plain = is an ordinary key") {
        CHECK(parse("=: 1\n").value.dump() == R"({"=":1})");
    }
}

TEST_CASE("a merge key that is not a mapping is an error", "[document]") {
    const SourceError error = parse_error("m:\n  <<: 5\n");
    CHECK(std::string(error.what()) ==
          "f.yaml:2:7: a merge key (<<) takes a mapping or a list of mappings");
    CHECK(position(parse_error("m:\n  <<: [{a: 1}, 2]\n").mark()) == "2:16");
    CHECK(std::string(parse_error("k: <<\n").what()) ==
          "f.yaml:1:4: '<<' cannot stand alone as a value in YAML 1.1 (quote it)");
}

// PyYAML resolves `!!merge <<` to the same merge tag as a plain `<<`.
TEST_CASE("an explicit !!merge key merges", "[document][!mayfail]") {
    CHECK(parse("a: &a {x: 1}\nb:\n  !!merge <<: *a\n").value["b"].dump() == R"({"x":1})");
}

TEST_CASE("keys equal in Python collapse: first spelling, last value", "[document]") {
    const Document document = parse("1: a\n1.0: b\ntrue: c\nx: d\n");
    CHECK(document.value.dump() == R"({"1":"c","x":"d"})");
    REQUIRE(document.duplicate_keys.size() == 2);
    CHECK(document.duplicate_keys[0].mapping_pointer.empty());
    CHECK(document.duplicate_keys[0].key == "1");
    CHECK(position(document.duplicate_keys[0].mark) == "2:1");
    CHECK(position(document.duplicate_keys[1].mark) == "3:1");

    CHECK(parse("true: c\n1: a\n").value.dump() == R"({"true":"a"})");
    CHECK(parse("0: a\nfalse: b\n0.0: c\n").value.dump() == R"({"0":"c"})");
    CHECK(parse("null: 1\n~: 2\n").value.dump() == R"({"null":2})");
    CHECK(parse("1.5: a\n").value.dump() == R"({"1.5":"a"})");
    CHECK(parse("'1': a\n2: b\n").value.dump() == R"({"1":"a","2":"b"})");
}

TEST_CASE("keys written twice are recorded with the mapping and position", "[document]") {
    const Document document = parse("l:\n  a: 1\n  a: 2\n  b: {c: 1, c: 2}\n");
    CHECK(document.value.dump() == R"({"l":{"a":2,"b":{"c":2}}})");
    REQUIRE(document.duplicate_keys.size() == 2);
    CHECK(document.duplicate_keys[0].mapping_pointer == "/l");
    CHECK(document.duplicate_keys[0].key == "a");
    CHECK(position(document.duplicate_keys[0].mark) == "3:3");
    CHECK(document.duplicate_keys[1].mapping_pointer == "/l/b");
    CHECK(document.duplicate_keys[1].key == "c");
    CHECK(position(document.duplicate_keys[1].mark) == "4:13");
}

TEST_CASE("value_mark and key_mark point into the source", "[document]") {
    const Document document = parse("# c\nworker-image: w.img\nlimits:\n  memory: 1GiB\n"
                                    "  cpus: 2\nlist:\n  - a\n  - b: [x, y]\n\"a~b/c\": 1\n");
    CHECK(position(document.value_mark("")) == "2:1");
    CHECK(position(document.value_mark("/worker-image")) == "2:15");
    CHECK(position(document.key_mark("/worker-image")) == "2:1");
    CHECK(position(document.value_mark("/limits")) == "4:3");
    CHECK(position(document.key_mark("/limits")) == "3:1");
    CHECK(position(document.value_mark("/limits/memory")) == "4:11");
    CHECK(position(document.key_mark("/limits/memory")) == "4:3");
    CHECK(position(document.value_mark("/limits/cpus")) == "5:9");
    CHECK(position(document.value_mark("/list/0")) == "7:5");
    CHECK(position(document.value_mark("/list/1/b")) == "8:8");
    CHECK(position(document.key_mark("/list/1/b")) == "8:5");
    CHECK(position(document.value_mark("/list/1/b/1")) == "8:12");
    CHECK(position(document.value_mark("/a~0b~1c")) == "9:10");
    SECTION("a list item has no key: key_mark is its value_mark") {
        CHECK(position(document.key_mark("/list/0")) == "7:5");
    }
    SECTION("an absent value falls back to the nearest recorded ancestor") {
        CHECK(position(document.value_mark("/limits/disk")) == "4:3");
        CHECK(position(document.value_mark("/missing")) == "2:1");
        CHECK(position(document.value_mark("/list/1/b/1/deeper")) == "8:12");
    }
}

TEST_CASE("positions are kept only near the top", "[document]") {
    LoadLimits limits;
    limits.marked_depth = 2;
    const Document document = parse_document("a:\n  b:\n    c:\n      d: 1\n", "f.yaml", limits);
    CHECK(position(document.value_mark("/a/b")) == "3:5");
    CHECK(position(document.value_mark("/a/b/c")) == "3:5");
    CHECK(position(document.value_mark("/a/b/c/d")) == "3:5");
}

// A value overridden by a later key (duplicate or merge) must be located where it is written.
TEST_CASE("value_mark points at the value that is kept", "[document]") {
    SECTION("after a merge") {
        const Document document = parse("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  x: 3\n");
        CHECK(position(document.key_mark("/m/x")) == "4:3");
        CHECK(position(document.value_mark("/m/x")) == "4:6");
    }
    SECTION("after a duplicate key") {
        const Document document = parse("a: 1\nb: 2\na: 3\n");
        CHECK(position(document.key_mark("/a")) == "3:1");
        CHECK(position(document.value_mark("/a")) == "3:4");
    }
}

// PyYAML places an empty value right after the ':' of its key, not on the next line.
TEST_CASE("an empty value is located after its key", "[document]") {
    const Document document = parse("w: x\nbuild:\nenv:\n  V:\n  W: 1\n");
    CHECK(position(document.value_mark("/build")) == "2:7");
    CHECK(position(document.value_mark("/env/V")) == "4:5");
}

// PyYAML counts columns in characters ("line 1, column 5" for the tag below).
TEST_CASE("columns count characters, not bytes", "[document]") {
    CHECK(position(parse_error("k\xc3\xa9: !vault x\n").mark()) == "1:5");
}

TEST_CASE("syntax errors are SourceErrors at FILE:LINE:COLUMN", "[document]") {
    CHECK(std::string(parse_error("a: [1, 2\n").what()) ==
          "f.yaml:2:1: end of sequence flow not found");
    CHECK(std::string(parse_error("a: b: c\n").what()) == "f.yaml:1:5: illegal map value");
    CHECK(std::string(parse_error("a:\n- b\n  c: d\n").what()) == "f.yaml:3:4: illegal map value");
    CHECK(std::string(parse_error("a: *nope\n").what()) ==
          "f.yaml:1:4: the referenced anchor is not defined");
    const SourceError error = parse_error("x: 1\nlimits: {cpus: 2, memory: 1GiB\n\n");
    CHECK(error.mark().line == 4);
    CHECK(error.mark().column == 1);
    CHECK_THAT(error.what(), Contains("end of map flow not found"));
    CHECK(to_int(error.exit_code()) == 2);
}

// PyYAML: "while scanning a quoted scalar ... found unexpected end of stream".
TEST_CASE("an unterminated quoted scalar is a syntax error", "[document][!mayfail]") {
    REQUIRE_THROWS_AS(parse("a: 'unterminated\n"), SourceError);
}

TEST_CASE("bytes that are not UTF-8 are rejected where they are", "[document]") {
    const SourceError error = parse_error("a: 1\nb: \"\xe9\"\n");
    CHECK(std::string(error.what()) == "f.yaml:2:5: invalid UTF-8 byte 0xE9");
    CHECK(error.hint() == "save the file as UTF-8");
    CHECK(std::string(parse_error("\xc3\xa9\xff").what()) == "f.yaml:1:2: invalid UTF-8 byte 0xFF");
    CHECK(std::string(parse_error("k: \xc0\xaf\n").what()) ==
          "f.yaml:1:4: invalid UTF-8 byte 0xC0");
    CHECK(std::string(parse_error("k: \xe2\x82").what()) == "f.yaml:1:4: invalid UTF-8 byte 0xE2");
}

TEST_CASE("characters YAML forbids are rejected", "[document]") {
    const SourceError bell = parse_error("a: 1\nbuild: make\a\n");
    CHECK(std::string(bell.what()) == "f.yaml:2:12: character U+0007 is not allowed in YAML");
    CHECK_THAT(bell.hint(), Contains("escape"));
    CHECK_THAT(parse_error(std::string("a: b\0", 5)).what(), Contains("1:5: character U+0000"));
    CHECK_THAT(parse_error("a: b\x7f\n").what(), Contains("1:5: character U+007F"));
    CHECK_THAT(parse_error("a: b\xc2\x80\n").what(), Contains("1:5: character U+0080"));
    CHECK_THAT(parse_error("a: \xef\xbf\xbe\n").what(), Contains("1:4: character U+FFFE"));
    SECTION("tab, NEL, a BOM and other printable characters are allowed") {
        CHECK(parse("a: \"x\ty\"\n").value["a"] == "x\ty");
        CHECK(parse("a: \"b\xc2\x85\"\n").value["a"] == "b\xc2\x85");
        CHECK(parse("\xef\xbb\xbf"
                    "a: 1\n")
                  .value.dump() == R"({"a":1})");
        CHECK(parse("a: \xf0\x9f\x99\x82\n").value["a"] == "\xf0\x9f\x99\x82");
    }
}

// YAML 1.1 (and so PyYAML) counts NEL, LS and PS as line breaks; YAML 1.2 and yaml-cpp do not.
TEST_CASE("NEL, LS and PS break lines as in PyYAML", "[document][!mayfail]") {
    CHECK(parse("a: b\xc2\x85\n").value["a"] == "b");
    CHECK(parse("a: b\xe2\x80\xa8\n").value["a"] == "b");
    // PyYAML: "could not find expected ':'", line 2, column 1.
    REQUIRE_THROWS_AS(parse("a: b\xc2\x85"
                            "c\n"),
                      SourceError);
}

TEST_CASE("a second document is an error at its '---'", "[document]") {
    const SourceError error = parse_error("a: 1\n---\nb: 2\n");
    CHECK(std::string(error.what()) == "f.yaml:2:1: expected a single document, found another one");
    CHECK_THAT(error.hint(), Contains("'---'"));
    CHECK(std::string(parse_error("a: 1\n---\n").what()) ==
          "f.yaml:2:1: expected a single document, found another one");
    CHECK(std::string(parse_error("--- 1\n--- 2\n--- 3\n").what()) ==
          "f.yaml:2:1: expected a single document, found another one");
}

TEST_CASE("a ',' outside a flow collection is an error, not a hang", "[document]") {
    const SourceError error = parse_error("# c\n, worker-image: x\n");
    CHECK(std::string(error.what()) == "f.yaml:2:1: unexpected ',' outside a [ ] or { } list");
    CHECK(error.hint() == "remove it or quote the value it starts");
    REQUIRE_THROWS_AS(parse(",\n"), SourceError);
}

TEST_CASE("folded scalars keep their trailing lines with '>+'", "[document]") {
    CHECK(parse("a: >+\n  one\n\n").value["a"] == "one\n\n");
    CHECK(parse("a: >+\n  one\n\n\nb: 1\n").value.dump() == R"({"a":"one\n\n\n","b":1})");
    CHECK(parse("a: >+\n  one\n  two\n\n  three\n\n\n").value["a"] == "one two\nthree\n\n\n");
    CHECK(parse("a: >2+\n   one\n\n").value["a"] == " one\n\n");
    CHECK(parse("a: |+\n  one\n\n").value["a"] == "one\n\n");
    CHECK(parse("a: >-\n  one\n\n").value["a"] == "one");
    CHECK(parse("a: >\n  one\n\n").value["a"] == "one\n");
}

TEST_CASE("tags the safe loader does not know are rejected", "[document]") {
    const SourceError vault =
        parse_error("vars:\n  secret: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n");
    CHECK(std::string(vault.what()) == "f.yaml:2:11: unsupported tag '!vault'");
    CHECK_THAT(vault.hint(), Contains("yaml.safe_load"));
    CHECK(std::string(parse_error("k: !!binary aGVsbG8=\n").what()) ==
          "f.yaml:1:4: unsupported tag !!binary");
    CHECK(std::string(parse_error("- !foo {a: 1}\n").what()) ==
          "f.yaml:1:3: unsupported tag '!foo' on a mapping");
    CHECK(std::string(parse_error("- !!set {a}\n").what()) ==
          "f.yaml:1:3: unsupported tag !!set on a mapping");
    SECTION("the core tags are read as PyYAML reads them") {
        CHECK(parse("- !!map {a: 1}\n- !!seq [1]\n- !!str 1\n- !!int '7'\n- !!float 1\n")
                  .value.dump() == R"([{"a":1},[1],"1",7,1.0])");
    }
}

TEST_CASE("keys that JSON cannot hold are rejected", "[document]") {
    CHECK(std::string(parse_error("? [1]\n: 2\n").what()) ==
          "f.yaml:1:3: a mapping key must be a scalar, not a sequence");
    CHECK(std::string(parse_error("2001-12-14: x\n").what()) ==
          "f.yaml:1:1: a date cannot be a mapping key in JSON");
}

TEST_CASE("values PyYAML cannot construct are SourceErrors at the value", "[document]") {
    CHECK(std::string(parse_error("a:\n  b: 2024-02-30\n").what()) ==
          "f.yaml:2:6: '2024-02-30' is not a valid date");
    CHECK(std::string(parse_error("big: 99999999999999999999\n").what()) ==
          "f.yaml:1:6: integer '99999999999999999999' does not fit in 64 bits");
}

TEST_CASE("alias bombs stop at max_values", "[document]") {
    LoadLimits limits;
    limits.max_values = 20;
    // 1 root + 2 pairs + 2 lists + 5 items + 3 x (1 alias + 5 items) = 28 values.
    const SourceError error = parse_error("a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a]\n", limits);
    CHECK_THAT(error.what(), Contains("the document expands to more than 20 values"));
    CHECK_THAT(error.hint(), Contains("aliases"));
    limits.max_values = 40;
    CHECK(parse_document("a: &a [1, 2, 3, 4, 5]\nb: [*a, *a, *a]\n", "f.yaml", limits)
              .value["b"]
              .size() == 3);
}

TEST_CASE("nesting stops at max_depth", "[document]") {
    LoadLimits limits;
    limits.max_depth = 3;
    CHECK(parse_document("a: [[1]]\n", "f.yaml", limits).value.dump() == R"({"a":[[1]]})");
    CHECK(std::string(parse_error("a: [[[1]]]\n", limits).what()) ==
          "f.yaml:1:6: collections are nested more than 3 levels deep");
    const std::string deep = std::string(300, '[') + std::string(300, ']');
    CHECK_THAT(parse_error(deep).what(),
               Contains("collections are nested more than 256 levels deep"));
}

// Four nested collections are more than three levels, whether or not the innermost is empty.
TEST_CASE("max_depth counts an empty innermost collection", "[document]") {
    LoadLimits limits;
    limits.max_depth = 3;
    REQUIRE_THROWS_AS(parse_document("[[[[]]]]\n", "f.yaml", limits), SourceError);
}

TEST_CASE("files over max_bytes are refused before parsing", "[document]") {
    LoadLimits limits;
    limits.max_bytes = 10;
    CHECK(parse_document("a: 123456\n", "f.yaml", limits).value.dump() == R"({"a":123456})");
    CHECK(std::string(parse_error("a: 1234567\n", limits).what()) ==
          "f.yaml:1:1: the file is larger than 10 bytes");
}

TEST_CASE("load_document reads a file, and names what it cannot read", "[document]") {
    const contractor::test::TemporaryDirectory temporary;
    const auto& directory = temporary.path();
    const std::string file = temporary.write("spec.yaml", "a: 1\nb: [x]\n").string();

    SECTION("a file") {
        const Document document = contractor::yaml::load_document(file);
        CHECK(document.file == file);
        CHECK(document.value.dump() == R"({"a":1,"b":["x"]})");
    }
    SECTION("a file over the limit") {
        LoadLimits limits;
        limits.max_bytes = 5;
        REQUIRE_THROWS_WITH(contractor::yaml::load_document(file, limits),
                            file + ":1:1: the file is larger than 5 bytes");
    }
    SECTION("a missing file") {
        const std::string missing = (directory / "missing.yaml").string();
        REQUIRE_THROWS_AS(contractor::yaml::load_document(missing), UsageError);
        REQUIRE_THROWS_WITH(contractor::yaml::load_document(missing),
                            missing + ": cannot read: No such file or directory");
    }
    SECTION("a directory") {
        REQUIRE_THROWS_AS(contractor::yaml::load_document(directory.string()), UsageError);
        REQUIRE_THROWS_WITH(contractor::yaml::load_document(directory.string()),
                            directory.string() + ": cannot read: it is a directory");
    }
}

TEST_CASE("child_pointer escapes ~ and / as RFC 6901 requires", "[document]") {
    CHECK(contractor::yaml::child_pointer("", "limits") == "/limits");
    CHECK(contractor::yaml::child_pointer("/limits", "memory") == "/limits/memory");
    CHECK(contractor::yaml::child_pointer("/env", "a~b/c") == "/env/a~0b~1c");
    CHECK(contractor::yaml::child_pointer("/x", "") == "/x/");
}

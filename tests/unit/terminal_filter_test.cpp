// Tests for util/terminal_filter.hpp: what of a build's output may reach a terminal.
#include "util/terminal_filter.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using contractor::util::TerminalFilter;

namespace {

// The filter's output for `input` fed whole, and fed one byte at a time (every sequence then
// crosses a chunk boundary): both must agree.
std::string filtered(const std::string& input) {
    TerminalFilter whole;
    std::string at_once = whole.filter(input);
    at_once += whole.finish();
    TerminalFilter bytewise;
    std::string one_by_one;
    for (const char c : input) {
        one_by_one += bytewise.filter(std::string_view(&c, 1));
    }
    one_by_one += bytewise.finish();
    CHECK(one_by_one == at_once);
    return at_once;
}

} // namespace

TEST_CASE("text, newlines, tabs, carriage returns and UTF-8 pass", "[terminal]") {
    const std::string text =
        "gcc -c main.c\n\tok\r100%\b \xe2\x9c\x93 caf\xc3\xa9 \xf0\x9f\x90\xa7\n";
    CHECK(filtered(text) == text);
}

TEST_CASE("SGR colour sequences pass", "[terminal]") {
    for (const std::string sgr : {"\x1b[m", "\x1b[0m", "\x1b[1;31m", "\x1b[38;5;208m",
                                  "\x1b[38;2;255;128;0m", "\x1b[4:3m"}) {
        INFO(sgr.substr(1));
        CHECK(filtered("a" + sgr + "b") == "a" + sgr + "b");
    }
}

TEST_CASE("OSC 52, OSC 8 and the title are stripped with their contents", "[terminal]") {
    CHECK(filtered("a\x1b]52;c;ZWNobyBwd25lZA==\x07"
                   "b") == "ab");
    CHECK(filtered("a\x1b]52;c;ZWNobyBwd25lZA==\x1b\\b") == "ab");
    CHECK(filtered("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\") == "click");
    CHECK(filtered("\x1b]0;new title\x07"
                   "done") == "done");
}

TEST_CASE("CSI other than SGR is stripped", "[terminal]") {
    CHECK(filtered("a\x1b[2Jb") == "ab");     // clear the screen
    CHECK(filtered("a\x1b[10;20Hb") == "ab"); // move the cursor
    CHECK(filtered("a\x1b[?1049hb") == "ab"); // alternate screen
    CHECK(filtered("a\x1b[6nb") == "ab");     // a report typed back as input
    CHECK(filtered("a\x1b[21tb") == "ab");    // report the title
    CHECK(filtered("a\x1b[?25lb") == "ab");   // private marker
    CHECK(filtered("a\x1b[1 qb") == "ab");    // an intermediate byte
    CHECK(filtered("a\x1b[>4;2mb") == "ab");  // looks like SGR, is not
}

TEST_CASE("DCS, APC, PM, SOS and two-byte ESC sequences are stripped", "[terminal]") {
    CHECK(filtered("a\x1bP+q544e\x1b\\b") == "ab");
    CHECK(filtered("a\x1b_apc\x1b\\b") == "ab");
    CHECK(filtered("a\x1b^pm\x1b\\b") == "ab");
    CHECK(filtered("a\x1bXsos\x1b\\b") == "ab");
    CHECK(filtered("a\x1b"
                   "cb") == "ab");       // full reset
    CHECK(filtered("a\x1b(0b") == "ab"); // line-drawing character set
    CHECK(filtered("a\x1b#8b") == "ab");
}

TEST_CASE("other controls are dropped: BEL, C1 bytes and U+0080..U+009F", "[terminal]") {
    CHECK(filtered("bell\x07!") == "bell!");
    CHECK(filtered(std::string("nul\0!", 5)) == "nul!");
    CHECK(filtered("del\x7f!") == "del!");
    CHECK(filtered("csi\x9b"
                   "2J") == "csi2J"); // the 8-bit CSI alone; what follows is text
    CHECK(filtered("osc\xc2\x9d"
                   "0;t") == "osc0;t");
    // Bytes that are not UTF-8 from 0xA0 up pass (a Latin-1 terminal shows them).
    CHECK(filtered("latin1 \xe9t\xe9") == "latin1 \xe9t\xe9");
    CHECK(filtered("\xe2\x9c"
                   "x") == "\xe2x"); // a cut character: its C1-range byte goes
}

TEST_CASE("a sequence split across chunks is held, then passed or dropped whole", "[terminal]") {
    TerminalFilter filter;
    CHECK(filter.filter("red \x1b[3") == "red ");
    CHECK(filter.filter("1mtext\x1b]5") == "\x1b[31mtext");
    CHECK(filter.filter("2;c;cHduZWQ=") == "");
    CHECK(filter.filter("\x1b") == "");
    CHECK(filter.filter("\\after \xe2\x9c") == "after ");
    CHECK(filter.filter("\x93\n") == "\xe2\x9c\x93\n");
}

TEST_CASE("the filter's state is bounded", "[terminal]") {
    SECTION("an over-long CSI is dropped whole") {
        const std::string params(TerminalFilter::max_held_sequence * 4, '1');
        CHECK(filtered("a\x1b[" + params + "mb") == "ab");
    }
    SECTION("an unterminated OSC hides at most max_string bytes") {
        const std::string payload(TerminalFilter::max_string + 1, 'A');
        CHECK(filtered("a\x1b]52;c;" + payload + "visible") == "aAAAAAvisible");
    }
}

TEST_CASE("ESC never reaches the output outside a complete SGR", "[terminal]") {
    // Every two- and three-byte prefix of hostile input, fed after ESC: the output may hold ESC
    // only as the start of "ESC [ digits m".
    std::string hostile;
    for (int first = 0; first < 256; ++first) {
        hostile += '\x1b';
        hostile += static_cast<char>(first);
        hostile += "x\x1b[";
        hostile += static_cast<char>(first);
        hostile += "m";
    }
    const std::string out = filtered(hostile);
    for (std::size_t at = out.find('\x1b'); at != std::string::npos;
         at = out.find('\x1b', at + 1)) {
        const std::size_t end = out.find('m', at);
        REQUIRE(end != std::string::npos);
        CHECK(out.compare(at, 2, "\x1b[") == 0);
        CHECK(out.find_first_not_of("0123456789;:", at + 2) == end);
    }
}

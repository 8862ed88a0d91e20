// Tests for util/escape.hpp: names and messages made safe to print.
#include "util/escape.hpp"

#include <catch2/catch.hpp>

#include <string>

using contractor::util::escape;
using contractor::util::escape_message;
using contractor::util::escape_name;
using contractor::util::utf8_sequence_length;

TEST_CASE("printable names and valid UTF-8 are kept", "[escape]") {
    CHECK(escape_name("src/main.c") == "src/main.c");
    CHECK(escape_name("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xa7") ==
          "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x90\xa7");
    CHECK(escape_name("") == "");
}

TEST_CASE("terminal sequences in a name are shown, not obeyed", "[escape]") {
    CHECK(escape_name("clip\x1b]52;c;aGVsbG8=\x07.txt") == "clip\\e]52;c;aGVsbG8=\\x07.txt");
    CHECK(escape_name("\x1b[2Jclear") == "\\e[2Jclear");
    CHECK(escape_name("two\nlines\r\tand tab") == "two\\nlines\\r\\tand tab");
    CHECK(escape_name(std::string("nul\0byte", 8)) == "nul\\x00byte");
    CHECK(escape_name("del\x7f") == "del\\x7f");
    // C1 controls as UTF-8 (U+009B is CSI to some terminals) and as a lone byte.
    CHECK(escape_name("c1\xc2\x9b"
                      "2J") == "c1\\xc2\\x9b2J");
    CHECK(escape_name("lone\x9b"
                      "2J") == "lone\\x9b2J");
}

TEST_CASE("invalid UTF-8 is shown byte by byte", "[escape]") {
    CHECK(escape_name("latin1 \xe9t\xe9") == "latin1 \\xe9t\\xe9");
    CHECK(escape_name("\xff\xfe") == "\\xff\\xfe");
    CHECK(escape_name("cut \xe2\x9c") == "cut \\xe2\\x9c");           // a character cut short
    CHECK(escape_name("\xc0\xaf") == "\\xc0\\xaf");                   // an overlong '/'
    CHECK(escape_name("\xed\xa0\x80") == "\\xed\\xa0\\x80");          // a UTF-16 surrogate
    CHECK(escape_name("\xf4\x90\x80\x80") == "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
    CHECK(escape_name("\xe2\x9c\x93\x80ok") == "\xe2\x9c\x93\\x80ok");
}

TEST_CASE("characters that reorder or split a line are escaped", "[escape]") {
    // U+202E RIGHT-TO-LEFT OVERRIDE makes "evil\u202Etxt.exe" read as "evilexe.txt".
    CHECK(escape_name("evil\xe2\x80\xaetxt.exe") == "evil\\xe2\\x80\\xaetxt.exe");
    CHECK(escape_name("a\xe2\x81\xa6"
                      "b") == "a\\xe2\\x81\\xa6b");                        // U+2066
    CHECK(escape_name("line\xe2\x80\xa8sep") == "line\\xe2\\x80\\xa8sep"); // U+2028
}

TEST_CASE("a name's backslashes are doubled, a message's are not", "[escape]") {
    // Otherwise a file really named "\e[2J" would print like one holding ESC.
    CHECK(escape_name("\\e[2J") == "\\\\e[2J");
    CHECK(escape_message("C:\\path") == "C:\\path");
    CHECK(escape_message("cannot create ws/" + escape_name("a\x1b") + ": EEXIST") ==
          "cannot create ws/a\\e: EEXIST");
}

TEST_CASE("a multi-line message keeps its newlines and tabs, nothing else", "[escape]") {
    const std::string console = "VM stopped; last console lines:\n\tKernel panic\x1b[31m\r";
    CHECK(escape_message(console, true) ==
          "VM stopped; last console lines:\n\tKernel panic\\e[31m\\r");
    CHECK(escape_message(console) == "VM stopped; last console lines:\\n\\tKernel panic\\e[31m\\r");
}

TEST_CASE("escape without short forms writes every escaped byte as \\xNN", "[escape]") {
    CHECK(escape("a\x1b\n\t", {.short_forms = false}) == "a\\x1b\\x0a\\x09");
}

TEST_CASE("utf8_sequence_length accepts exactly the well-formed sequences", "[escape]") {
    CHECK(utf8_sequence_length("a") == 1);
    CHECK(utf8_sequence_length("\xc3\xa9") == 2);
    CHECK(utf8_sequence_length("\xe2\x9c\x93") == 3);
    CHECK(utf8_sequence_length("\xf0\x9f\x90\xa7") == 4);
    CHECK(utf8_sequence_length("") == 0);
    CHECK(utf8_sequence_length("\x80") == 0);
    CHECK(utf8_sequence_length("\xc1\xbf") == 0);
    CHECK(utf8_sequence_length("\xe0\x80\x80") == 0);
    CHECK(utf8_sequence_length("\xf0\x80\x80\x80") == 0);
    CHECK(utf8_sequence_length("\xf5\x80\x80\x80") == 0);
    CHECK(utf8_sequence_length("\xc3") == 0);
}

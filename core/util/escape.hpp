#pragma once

#include <cstddef>
#include <string>
#include <string_view>

// Text from a worker (file names, messages, build output) is root-controlled: printed raw, an
// ESC sequence can clear the screen, retitle the terminal, write the user's clipboard (OSC 52)
// or forge a line of contractor's own output. Everything contractor prints or writes to the
// report passes through one of these first.
namespace contractor::util {

// How escape() writes what it escapes.
struct EscapeRules {
    bool backslash = false;     // a backslash as \\ (unambiguous names)
    bool keep_newlines = false; // newline and tab left as they are
    bool short_forms = true;    // \e, \n, \r, \t rather than \xNN for those four
};

// `text` with valid UTF-8 kept, and these shown as \xNN a byte at a time: C0 controls, DEL, C1
// controls (U+0080..U+009F), the Unicode bidirectional controls (U+061C, U+200E/F, U+202A..U+202E,
// U+2066..U+2069, which can make a name read backwards), U+2028/U+2029 and every byte that is
// not part of valid UTF-8.
std::string escape(std::string_view text, EscapeRules rules);

// A name (path, file name, host) for people, escaped with backslashes doubled, so that two
// different names never print alike.
std::string escape_name(std::string_view name);

// A message for people: escaped as escape_name(), except that a backslash stays as it is (a
// message often quotes a name escaped already) and, when `multiline`, newlines and tabs stay
// too (console lines in a boot error).
std::string escape_message(std::string_view message, bool multiline = false);

// The length of the valid UTF-8 sequence at the start of `text` (1 to 4), or 0 when the first
// byte does not start one (a stray continuation byte, an overlong form, a surrogate, a code
// point above U+10FFFF, or a sequence cut short). ASCII counts as valid, length 1.
std::size_t utf8_sequence_length(std::string_view text);

} // namespace contractor::util

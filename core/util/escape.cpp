#include "util/escape.hpp"

#include <cstdint>
#include <cstdio>

namespace contractor::util {
namespace {

// The code point of a valid sequence of `length` bytes at the start of `text`.
char32_t decode(std::string_view text, std::size_t length) {
    const auto byte = [&](std::size_t i) {
        return static_cast<unsigned char>(text[i]);
    };
    switch (length) {
    case 1:
        return byte(0);
    case 2:
        return (char32_t{byte(0)} & 0x1f) << 6 | (byte(1) & 0x3f);
    case 3:
        return (char32_t{byte(0)} & 0x0f) << 12 | (char32_t{byte(1)} & 0x3f) << 6 |
               (byte(2) & 0x3f);
    default:
        return (char32_t{byte(0)} & 0x07) << 18 | (char32_t{byte(1)} & 0x3f) << 12 |
               (char32_t{byte(2)} & 0x3f) << 6 | (byte(3) & 0x3f);
    }
}

// Code points above ASCII that are escaped although they are valid UTF-8: C1 controls (some
// terminals obey U+009B as CSI) and the invisible characters that reorder or break a line.
bool is_hidden(char32_t code) {
    return (code >= 0x80 && code <= 0x9f) || code == 0x061c || code == 0x200e || code == 0x200f ||
           (code >= 0x2028 && code <= 0x202e) || (code >= 0x2066 && code <= 0x2069);
}

void append_byte(std::string& out, unsigned char byte, bool short_forms) {
    if (short_forms) {
        switch (byte) {
        case 0x1b:
            out += "\\e";
            return;
        case '\n':
            out += "\\n";
            return;
        case '\r':
            out += "\\r";
            return;
        case '\t':
            out += "\\t";
            return;
        default:
            break;
        }
    }
    char buffer[8];
    std::snprintf(buffer, sizeof buffer, "\\x%02x", byte);
    out += buffer;
}

} // namespace

std::string escape(std::string_view text, EscapeRules rules) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto byte = static_cast<unsigned char>(text[i]);
        const std::size_t length = utf8_sequence_length(text.substr(i));
        if (length == 0) {
            append_byte(out, byte, rules.short_forms); // not UTF-8: the byte itself
            ++i;
            continue;
        }
        const char32_t code = decode(text.substr(i), length);
        if (code < 0x20 || code == 0x7f || is_hidden(code)) {
            if (rules.keep_newlines && (code == '\n' || code == '\t')) {
                out += static_cast<char>(code);
            } else {
                for (std::size_t k = 0; k < length; ++k) {
                    append_byte(out, static_cast<unsigned char>(text[i + k]), rules.short_forms);
                }
            }
        } else if (code == '\\' && rules.backslash) {
            out += "\\\\";
        } else {
            out.append(text.substr(i, length));
        }
        i += length;
    }
    return out;
}

std::size_t utf8_sequence_length(std::string_view text) {
    if (text.empty()) {
        return 0;
    }
    const auto lead = static_cast<unsigned char>(text[0]);
    if (lead < 0x80) {
        return 1;
    }
    std::size_t length = 0;
    // The range of the second byte, narrowed for the leads that would otherwise allow an
    // overlong form (E0, F0), a UTF-16 surrogate (ED) or a code point above U+10FFFF (F4).
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        low = lead == 0xe0 ? 0xa0 : 0x80;
        high = lead == 0xed ? 0x9f : 0xbf;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        low = lead == 0xf0 ? 0x90 : 0x80;
        high = lead == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0; // a continuation byte, C0/C1 (overlong two-byte forms) or F5..FF
    }
    if (text.size() < length) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        const auto byte = static_cast<unsigned char>(text[k]);
        if (byte < (k == 1 ? low : 0x80) || byte > (k == 1 ? high : 0xbf)) {
            return 0;
        }
    }
    return length;
}

std::string escape_name(std::string_view name) {
    return escape(name, {.backslash = true});
}

std::string escape_message(std::string_view message, bool multiline) {
    return escape(message, {.keep_newlines = multiline});
}

} // namespace contractor::util

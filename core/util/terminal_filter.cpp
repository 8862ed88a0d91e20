#include "util/terminal_filter.hpp"

namespace contractor::util {
namespace {

constexpr unsigned char esc = 0x1b;
constexpr unsigned char bel = 0x07;
// CAN and SUB cancel a sequence in every terminal.
constexpr unsigned char can = 0x18;
constexpr unsigned char sub = 0x1a;

bool is_kept_control(unsigned char byte) {
    return byte == '\n' || byte == '\t' || byte == '\r' || byte == '\b';
}

// The number of bytes of the UTF-8 character that `lead` starts, 0 when it starts none.
std::size_t utf8_length(unsigned char lead) {
    if (lead >= 0xc2 && lead <= 0xdf) {
        return 2;
    }
    if (lead >= 0xe0 && lead <= 0xef) {
        return 3;
    }
    if (lead >= 0xf0 && lead <= 0xf4) {
        return 4;
    }
    return 0;
}

// Whether `byte` can be the continuation byte at `position` (1 to 3) of the character that
// `lead` starts: the second byte's range is narrowed where a wider one would allow an
// overlong form (E0, F0), a UTF-16 surrogate (ED) or a code point above U+10FFFF (F4).
bool continues(unsigned char lead, std::size_t position, unsigned char byte) {
    unsigned char low = 0x80;
    unsigned char high = 0xbf;
    if (position == 1) {
        low = lead == 0xe0 ? 0xa0 : lead == 0xf0 ? 0x90 : 0x80;
        high = lead == 0xed ? 0x9f : lead == 0xf4 ? 0x8f : 0xbf;
    }
    return byte >= low && byte <= high;
}

} // namespace

std::string TerminalFilter::filter(std::string_view chunk) {
    std::string out;
    out.reserve(chunk.size());
    for (const char c : chunk) {
        step(static_cast<unsigned char>(c), out);
    }
    return out;
}

std::string TerminalFilter::finish() {
    std::string out;
    if (state_ == State::utf8) {
        stray_bytes(held_, out);
    }
    state_ = State::ground;
    held_.clear();
    return out;
}

// Bytes that are not a whole UTF-8 character: a terminal in a legacy 8-bit encoding shows
// 0xA0..0xFF as text and a UTF-8 one shows U+FFFD, but 0x80..0x9F are C1 controls there.
void TerminalFilter::stray_bytes(std::string_view bytes, std::string& out) {
    for (const char c : bytes) {
        if (static_cast<unsigned char>(c) >= 0xa0) {
            out += c;
        }
    }
}

void TerminalFilter::ground(unsigned char byte, std::string& out) {
    if (byte == esc) {
        state_ = State::escape;
    } else if (byte >= 0x20 && byte < 0x7f) {
        out += static_cast<char>(byte);
    } else if (is_kept_control(byte)) {
        out += static_cast<char>(byte);
    } else if (byte >= 0x80) {
        utf8_length_ = utf8_length(byte);
        if (utf8_length_ == 0) {
            stray_bytes(std::string_view(reinterpret_cast<const char*>(&byte), 1), out);
        } else {
            held_.assign(1, static_cast<char>(byte));
            state_ = State::utf8;
        }
    }
    // Any other C0 control and DEL: dropped.
}

void TerminalFilter::step(unsigned char byte, std::string& out) {
    switch (state_) {
    case State::ground:
        ground(byte, out);
        return;

    case State::utf8: {
        if (!continues(static_cast<unsigned char>(held_[0]), held_.size(), byte)) {
            // Not UTF-8 after all: the bytes so far are stray; this one starts afresh.
            stray_bytes(held_, out);
            held_.clear();
            state_ = State::ground;
            ground(byte, out);
            return;
        }
        held_ += static_cast<char>(byte);
        if (held_.size() < utf8_length_) {
            return;
        }
        // U+0080..U+009F are C1 controls (some terminals obey U+009B as CSI).
        const bool c1 = static_cast<unsigned char>(held_[0]) == 0xc2 &&
                        static_cast<unsigned char>(held_[1]) <= 0x9f;
        if (!c1) {
            out += held_;
        }
        held_.clear();
        state_ = State::ground;
        return;
    }

    case State::escape:
        if (byte == '[') {
            held_ = "\x1b[";
            sgr_ = true;
            state_ = State::csi;
        } else if (byte == ']' || byte == 'P' || byte == 'X' || byte == '^' || byte == '_') {
            string_bytes_ = 0;
            state_ = State::string;
        } else if (byte >= 0x20 && byte <= 0x2f) {
            state_ = State::escape_intermediate;
        } else if (byte >= 0x30 && byte <= 0x7e) {
            state_ = State::ground; // a two-byte sequence (ESC c resets the terminal): dropped
        } else if (byte == esc) {
            // ESC ESC: the second one starts the sequence.
        } else if (byte == can || byte == sub) {
            state_ = State::ground;
        } else {
            // A control or non-ASCII byte ends the sequence, as in a terminal, and counts.
            state_ = State::ground;
            ground(byte, out);
        }
        return;

    case State::escape_intermediate:
        if (byte >= 0x20 && byte <= 0x2f) {
            return;
        }
        state_ = State::ground;
        if (!(byte >= 0x30 && byte <= 0x7e) && byte != can && byte != sub) {
            ground(byte, out);
        }
        return;

    case State::csi:
    case State::csi_discard:
        if (byte >= 0x40 && byte <= 0x7e) {
            if (state_ == State::csi && byte == 'm' && sgr_) {
                out += held_;
                out += 'm';
            }
            held_.clear();
            state_ = State::ground;
        } else if (byte >= 0x20 && byte <= 0x3f) {
            // Parameters and intermediates. An SGR has only digits, ';' and ':'.
            if (!((byte >= '0' && byte <= '9') || byte == ';' || byte == ':')) {
                sgr_ = false;
            }
            if (state_ == State::csi) {
                held_ += static_cast<char>(byte);
                if (held_.size() > max_held_sequence) {
                    held_.clear();
                    state_ = State::csi_discard;
                }
            }
        } else if (byte == esc) {
            held_.clear();
            state_ = State::escape;
        } else if (byte == can || byte == sub || byte >= 0x80) {
            held_.clear();
            state_ = State::ground;
            if (byte >= 0x80) {
                ground(byte, out);
            }
        } else if (is_kept_control(byte)) {
            // A terminal carries out a control inside a CSI and goes on with the sequence.
            out += static_cast<char>(byte);
        }
        // Other C0 controls and DEL inside a CSI: dropped, the sequence goes on.
        return;

    case State::string:
        if (byte == bel || byte == can || byte == sub) {
            state_ = State::ground;
        } else if (byte == esc) {
            state_ = State::string_escape;
        } else if (++string_bytes_ > max_string) {
            state_ = State::ground; // unterminated: what follows is text again
        }
        return;

    case State::string_escape:
        if (byte == '\\') {
            state_ = State::ground; // ST
        } else {
            // Any other ESC ends the string and starts a new sequence.
            state_ = State::escape;
            step(byte, out);
        }
        return;
    }
}

} // namespace contractor::util

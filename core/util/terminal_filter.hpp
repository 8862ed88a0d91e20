#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace contractor::util {

// What of a build's output may reach the user's terminal. The build runs as root in the
// worker, and a terminal obeys what it prints: OSC 52 writes the clipboard, OSC 8 hides a
// link's target, CSI moves the cursor, clears the screen, retitles the window or reports
// back as typed input. So only this passes: printable text (UTF-8, and other bytes from 0xA0
// up for a terminal in a legacy 8-bit encoding), newline, tab, carriage return, backspace,
// and complete SGR colour sequences (ESC [ digits ; : m). Everything else is dropped: other C0
// controls (BEL...), DEL, C1 controls (a single byte 0x80..0x9F or U+0080..U+009F), and whole
// escape sequences (CSI other than SGR, OSC, DCS, SOS, PM, APC, two-byte ESC sequences).
// ESC reaches the output only inside a complete SGR, so the terminal is never left inside a
// sequence by what passed.
//
// It is a streaming filter: a sequence or UTF-8 character cut between two chunks is held until
// the next. Its state is bounded: a CSI is held up to max_held_sequence bytes, beyond which it
// is dropped whole (the rest of it discarded up to its final byte); an OSC/DCS/SOS/PM/APC
// string is discarded without being held, and after max_string bytes without a terminator
// the filter gives up on it and treats what follows as text, so that a stray ESC ] cannot hide
// the rest of the build's output.
class TerminalFilter {
public:
    static constexpr std::size_t max_held_sequence = 256;
    static constexpr std::size_t max_string = 64 * 1024;

    // What of `chunk` may be written to the terminal now.
    std::string filter(std::string_view chunk);
    // At the end of the stream: a UTF-8 character cut short (passed as its bytes would be),
    // never a partial escape sequence. The filter starts afresh afterwards.
    std::string finish();

private:
    enum class State {
        ground,
        utf8,   // inside a multi-byte UTF-8 character, held_ has its first bytes
        escape, // after ESC
        escape_intermediate,
        csi,           // held_ has ESC [ and the parameters so far
        csi_discard,   // an over-long CSI, dropped up to its final byte
        string,        // inside OSC, DCS, SOS, PM or APC: dropped
        string_escape, // ESC inside a string: ST (ESC \) or the start of a new sequence
    };

    void ground(unsigned char byte, std::string& out);
    void stray_bytes(std::string_view bytes, std::string& out);
    void step(unsigned char byte, std::string& out);

    State state_ = State::ground;
    std::string held_;
    std::size_t utf8_length_ = 0;  // of the character held in State::utf8
    std::size_t string_bytes_ = 0; // dropped so far in State::string
    bool sgr_ = false;             // the CSI held so far can still be an SGR
};

} // namespace contractor::util

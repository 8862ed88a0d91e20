#pragma once

#include <atomic>
#include <cstdint>

// Copying bytes both ways between two connections until both directions have ended.
namespace contractor::gateway {

// One side of a relay: where its bytes come from and where bytes for it go (the same socket
// for a TCP connection; stdin and stdout for the relay subcommand).
struct RelaySide {
    int read_fd;
    int write_fd;
};

// Relays between `a` and `b` until each direction has reached end of stream (passed on as a
// half-close: shutdown(SHUT_WR), or close() for a pipe), either side fails, or `stop_fd`
// becomes readable (-1 for none). Bytes delivered are added to `a_to_b` and `b_to_a` (may be
// null). Sets every descriptor non-blocking.
void relay(RelaySide a, RelaySide b, int stop_fd, std::atomic<std::uint64_t>* a_to_b,
           std::atomic<std::uint64_t>* b_to_a);

} // namespace contractor::gateway

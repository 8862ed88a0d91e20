#pragma once

#include "gateway/token_bucket.hpp"

#include <atomic>
#include <cstdint>
#include <functional>

// Copying bytes both ways between two connections until both directions have ended, counting
// and pacing each direction.
namespace contractor::gateway {

// One side of a relay: where its bytes come from and where bytes for it go (the same socket
// for a TCP connection).
struct RelaySide {
    int read_fd;
    int write_fd;
};

// How one direction's bytes are counted and paced. Every pointer may be null.
struct FlowMeter {
    std::atomic<std::uint64_t>* total = nullptr;      // all of the gateway's bytes this way
    std::atomic<std::uint64_t>* connection = nullptr; // this connection's (its attempt's tally)
    TokenBucket* bucket = nullptr;                    // network-rate
    // network-transfer: charged before bytes are passed on; false when the budget is spent,
    // and the relay ends.
    const std::function<bool(std::uint64_t)>* charge = nullptr;
};

// What happens to the bytes `a` sends.
enum class FromA {
    relay,   // passed on to b
    discard, // read and dropped (after an HTTP request's one body: nothing more goes upstream)
};

// Relays between `a` and `b` until each direction has reached end of stream (passed on as a
// half-close, shutdown(SHUT_WR)), either side fails, the transfer budget is spent, or `stop_fd`
// becomes readable. Sets every descriptor non-blocking.
void relay(RelaySide a, RelaySide b, int stop_fd, FlowMeter a_to_b, FlowMeter b_to_a,
           FromA from_a = FromA::relay);

// Counts `bytes` as passed on by `meter` (for bytes sent outside a relay); false when the
// transfer budget is spent.
bool meter_bytes(const FlowMeter& meter, std::uint64_t bytes);

} // namespace contractor::gateway

#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>

// network-rate: one token bucket per direction of the worker's traffic, shared by all of its
// connections, so opening more connections does not buy more bandwidth.
namespace contractor::gateway {

// What a relay may read now.
struct Grant {
    std::size_t bytes = 0; // may read this many now; 0: wait until `retry_at`
    std::chrono::steady_clock::time_point retry_at{};
};

// Tokens are bytes; they refill at the rate, up to a burst of a tenth of a second's worth
// (at least 16 KiB, so one read is never split into tiny ones). Thread-safe.
class TokenBucket {
public:
    // 0 bytes per second: no pacing, every grant is whole.
    explicit TokenBucket(std::uint64_t bytes_per_second);

    // How many of `wanted` bytes may be read now.
    Grant grant(std::size_t wanted);
    // Spends `bytes` that were read (concurrent readers may overdraw a little; the debt is
    // paid by waiting).
    void spend(std::size_t bytes);

    std::uint64_t rate() const { return rate_; }

private:
    void refill(std::chrono::steady_clock::time_point now);

    const std::uint64_t rate_;
    const double capacity_;
    std::mutex mutex_;
    double tokens_;
    std::chrono::steady_clock::time_point updated_;
};

} // namespace contractor::gateway

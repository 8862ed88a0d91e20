#include "gateway/token_bucket.hpp"

#include <algorithm>

namespace contractor::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// The smallest burst: one read of a typical socket buffer, so a slow rate still moves whole
// segments rather than a few bytes per wake-up.
constexpr double min_burst_bytes = 16 * 1024;

} // namespace

TokenBucket::TokenBucket(std::uint64_t bytes_per_second)
    : rate_(bytes_per_second),
      capacity_(std::max(min_burst_bytes, static_cast<double>(bytes_per_second) / 10)),
      tokens_(capacity_), updated_(Clock::now()) {}

void TokenBucket::refill(Clock::time_point now) {
    const double elapsed = std::chrono::duration<double>(now - updated_).count();
    tokens_ = std::min(capacity_, tokens_ + elapsed * static_cast<double>(rate_));
    updated_ = now;
}

Grant TokenBucket::grant(std::size_t wanted) {
    if (rate_ == 0) {
        return {wanted, {}};
    }
    const std::lock_guard lock(mutex_);
    const auto now = Clock::now();
    refill(now);
    if (tokens_ >= 1) {
        return {std::min(wanted, static_cast<std::size_t>(tokens_)), {}};
    }
    // Until one token (and any debt) is back.
    const double missing = 1 - tokens_;
    const auto wait = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(missing / static_cast<double>(rate_)));
    return {0, now + wait};
}

void TokenBucket::spend(std::size_t bytes) {
    if (rate_ == 0) {
        return;
    }
    const std::lock_guard lock(mutex_);
    refill(Clock::now());
    tokens_ -= static_cast<double>(bytes);
}

} // namespace contractor::gateway

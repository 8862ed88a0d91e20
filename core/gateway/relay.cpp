#include "gateway/relay.hpp"

#include "gateway/socket.hpp"

#include <algorithm>
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

namespace contractor::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// 64 KiB per direction: large enough that a package download costs few system calls.
constexpr std::size_t buffer_size = 64 * 1024;

// One direction of a relay: bytes read from `from` wait in `buffer` until written to `to`.
struct Direction {
    int from;
    int to;
    FlowMeter meter;
    bool discard = false;
    std::vector<char> buffer = std::vector<char>(buffer_size);
    std::size_t begin = 0;
    std::size_t end = 0;
    bool source_ended = false;
    bool finished = false;
    Clock::time_point paused_until{}; // the token bucket's answer: no read before this

    bool has_data() const { return begin < end; }

    // Moves bytes until the source or the destination would block (or the bucket holds the
    // direction back): one wake-up of poll moves as much as the sockets allow, not one buffer.
    // False on a hard error or a spent budget.
    bool pump() {
        for (int rounds = 0; rounds < 64 && !finished; ++rounds) {
            const std::size_t before_begin = begin;
            const std::size_t before_end = end;
            const bool was_empty = !has_data();
            if (!(has_data() ? drain() : fill())) {
                return false;
            }
            finish_if_done();
            const bool moved = was_empty ? end != before_end || begin != before_begin ||
                                               source_ended
                                         : begin != before_begin;
            if (!moved || source_ended || Clock::now() < paused_until) {
                return true;
            }
        }
        return true;
    }

    // Reads what is available and the bucket allows; false on a hard error or a spent budget.
    bool fill() {
        std::size_t wanted = buffer.size();
        if (meter.bucket != nullptr) {
            const Grant grant = meter.bucket->grant(wanted);
            if (grant.bytes == 0) {
                paused_until = grant.retry_at;
                return true;
            }
            wanted = grant.bytes;
        }
        const ssize_t got = ::read(from, buffer.data(), wanted);
        if (got > 0) {
            const auto bytes = static_cast<std::size_t>(got);
            if (meter.bucket != nullptr) {
                meter.bucket->spend(bytes);
            }
            if (discard) {
                return true;
            }
            if (meter.charge != nullptr && !(*meter.charge)(bytes)) {
                return false;
            }
            begin = 0;
            end = bytes;
        } else if (got == 0) {
            source_ended = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        return true;
    }

    // Writes what the destination takes; false on a hard error.
    bool drain() {
        const ssize_t sent = ::send(to, buffer.data() + begin, end - begin, MSG_NOSIGNAL);
        if (sent > 0) {
            begin += static_cast<std::size_t>(sent);
            for (auto* counter : {meter.total, meter.connection}) {
                if (counter != nullptr) {
                    counter->fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
                }
            }
        } else if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        return true;
    }

    // Once the source has ended and everything is written, tells the destination (a
    // discarded direction tells nobody: the destination never saw it).
    void finish_if_done() {
        if (finished || !source_ended || has_data()) {
            return;
        }
        finished = true;
        if (!discard) {
            ::shutdown(to, SHUT_WR);
        }
    }

    // What to poll for now, or nothing (-1) while the bucket holds it back.
    pollfd interest(Clock::time_point now) const {
        if (finished) {
            return {-1, 0, 0};
        }
        if (has_data()) {
            return {to, POLLOUT, 0};
        }
        return now < paused_until ? pollfd{-1, 0, 0} : pollfd{from, POLLIN, 0};
    }
};

} // namespace

bool meter_bytes(const FlowMeter& meter, std::uint64_t bytes) {
    if (bytes == 0) {
        return true;
    }
    if (meter.charge != nullptr && !(*meter.charge)(bytes)) {
        return false;
    }
    if (meter.bucket != nullptr) {
        meter.bucket->spend(bytes);
    }
    for (auto* counter : {meter.total, meter.connection}) {
        if (counter != nullptr) {
            counter->fetch_add(bytes, std::memory_order_relaxed);
        }
    }
    return true;
}

void relay(RelaySide a, RelaySide b, int stop_fd, FlowMeter a_to_b, FlowMeter b_to_a,
           FromA from_a) {
    for (int fd : {a.read_fd, a.write_fd, b.read_fd, b.write_fd}) {
        set_nonblocking(fd);
    }
    Direction directions[2] = {
        {a.read_fd, b.write_fd, a_to_b, from_a == FromA::discard},
        {b.read_fd, a.write_fd, b_to_a},
    };
    while (!directions[0].finished || !directions[1].finished) {
        const auto now = Clock::now();
        pollfd fds[3] = {directions[0].interest(now), directions[1].interest(now),
                         {stop_fd, POLLIN, 0}};
        // No timeout of its own: a build may hold a quiet connection open for long; the stop
        // event ends the relay when the phase ends or the gateway goes away. A paused
        // direction wakes when the bucket has tokens again.
        int timeout = -1;
        for (const auto& direction : directions) {
            if (!direction.finished && !direction.has_data() && now < direction.paused_until) {
                const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
                                      direction.paused_until - now)
                                      .count() +
                                  1;
                timeout = timeout < 0 ? static_cast<int>(wait)
                                      : std::min(timeout, static_cast<int>(wait));
            }
        }
        if (::poll(fds, 3, timeout) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (fds[2].revents != 0) {
            return;
        }
        for (int i = 0; i < 2; ++i) {
            Direction& direction = directions[i];
            if (fds[i].revents == 0) {
                continue;
            }
            if (!direction.pump()) {
                return; // a reset, a broken pipe or a spent budget ends both directions
            }
        }
    }
}

} // namespace contractor::gateway

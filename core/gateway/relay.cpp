#include "gateway/relay.hpp"

#include "gateway/socket.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace contractor::gateway {

namespace {

using Clock = std::chrono::steady_clock;

// How much one direction holds between a read and a write: a pipe this large (the kernel's
// default is 64 KiB), so a package download costs few system calls.
constexpr int pipe_size = 256 * 1024;
// A discarding direction reads into a buffer and drops it.
constexpr std::size_t discard_buffer_size = 16 * 1024;

// One direction of a relay. Bytes move from `from` to `to` through a pipe with splice(2): the
// kernel moves them from socket to socket without a copy through this process (measured in
// bench/gateway_throughput). A discarding direction reads and drops.
struct Direction {
    int from;
    int to;
    FlowMeter meter;
    bool discard = false;
    Fd pipe_out{};           // read end: bytes waiting for `to`
    Fd pipe_in{};            // write end
    std::size_t pending = 0; // bytes in the pipe
    bool source_ended = false;
    bool finished = false;
    Clock::time_point paused_until{}; // the token bucket's answer: no read before this

    // Makes the pipe; false when the system has none to give.
    bool open() {
        if (discard) {
            return true;
        }
        int ends[2];
        if (::pipe2(ends, O_NONBLOCK | O_CLOEXEC) != 0) {
            return false;
        }
        pipe_out = Fd(ends[0]);
        pipe_in = Fd(ends[1]);
        ::fcntl(pipe_in.get(), F_SETPIPE_SZ, pipe_size); // a smaller pipe still works
        return true;
    }

    bool has_data() const { return pending > 0; }

    // Moves bytes until the source or the destination would block (or the bucket holds the
    // direction back): one wake-up of poll moves as much as the sockets allow. False on a
    // hard error or a spent budget.
    bool pump() {
        for (int rounds = 0; rounds < 64 && !finished; ++rounds) {
            const std::size_t before = pending;
            const bool was_empty = !has_data();
            bool moved = false;
            if (!(has_data() ? drain(moved) : fill(moved))) {
                return false;
            }
            finish_if_done();
            if (!moved || source_ended || Clock::now() < paused_until ||
                (was_empty && pending == before && !discard)) {
                return true;
            }
        }
        return true;
    }

    // Reads what is available and the bucket allows; false on a hard error or a spent budget.
    bool fill(bool& moved) {
        std::size_t wanted = discard ? discard_buffer_size : static_cast<std::size_t>(pipe_size);
        if (meter.bucket != nullptr) {
            const Grant grant = meter.bucket->grant(wanted);
            if (grant.bytes == 0) {
                paused_until = grant.retry_at;
                return true;
            }
            wanted = grant.bytes;
        }
        ssize_t got = 0;
        if (discard) {
            char dropped[discard_buffer_size];
            got = ::read(from, dropped, std::min(wanted, sizeof dropped));
        } else {
            got = ::splice(from, nullptr, pipe_in.get(), nullptr, wanted,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        }
        if (got > 0) {
            const auto bytes = static_cast<std::size_t>(got);
            moved = true;
            if (meter.bucket != nullptr) {
                meter.bucket->spend(bytes);
            }
            if (discard) {
                return true;
            }
            if (meter.charge != nullptr && !(*meter.charge)(bytes)) {
                return false;
            }
            pending += bytes;
        } else if (got == 0) {
            source_ended = true;
            moved = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        return true;
    }

    // Writes what the destination takes; false on a hard error.
    bool drain(bool& moved) {
        const ssize_t sent = ::splice(pipe_out.get(), nullptr, to, nullptr, pending,
                                      SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (sent > 0) {
            moved = true;
            pending -= static_cast<std::size_t>(sent);
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
        {a.read_fd, b.write_fd, a_to_b, from_a == FromA::discard, Fd(), Fd()},
        {b.read_fd, a.write_fd, b_to_a, false, Fd(), Fd()},
    };
    if (!directions[0].open() || !directions[1].open()) {
        return; // out of descriptors: this connection ends, the others go on
    }
    while (!directions[0].finished || !directions[1].finished) {
        const auto now = Clock::now();
        pollfd fds[3] = {
            directions[0].interest(now), directions[1].interest(now), {stop_fd, POLLIN, 0}};
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

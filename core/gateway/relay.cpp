#include "gateway/relay.hpp"

#include "gateway/gateway.hpp"
#include "gateway/socket.hpp"
#include "util/exit_code.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace contractor::gateway {

namespace {

// 64 KiB per direction: large enough that a package download costs few system calls.
constexpr std::size_t buffer_size = 64 * 1024;

bool is_socket(int fd) {
    struct stat status {};
    return ::fstat(fd, &status) == 0 && S_ISSOCK(status.st_mode);
}

// One direction of a relay: bytes read from `from` wait in `buffer` until written to `to`.
struct Direction {
    int from;
    int to;
    bool to_is_socket;
    std::atomic<std::uint64_t>* counter;
    std::vector<char> buffer = std::vector<char>(buffer_size);
    std::size_t begin = 0;
    std::size_t end = 0;
    bool source_ended = false;
    bool finished = false;

    bool has_data() const { return begin < end; }

    // Reads what is available; false on a hard error.
    bool fill() {
        const ssize_t got = ::read(from, buffer.data(), buffer.size());
        if (got > 0) {
            begin = 0;
            end = static_cast<std::size_t>(got);
        } else if (got == 0) {
            source_ended = true;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        return true;
    }

    // Writes what the destination takes; false on a hard error.
    bool drain() {
        const std::size_t length = end - begin;
        const ssize_t sent = to_is_socket ? ::send(to, buffer.data() + begin, length, MSG_NOSIGNAL)
                                          : ::write(to, buffer.data() + begin, length);
        if (sent > 0) {
            begin += static_cast<std::size_t>(sent);
            if (counter != nullptr) {
                counter->fetch_add(static_cast<std::uint64_t>(sent), std::memory_order_relaxed);
            }
        } else if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return false;
        }
        return true;
    }

    // Once the source has ended and everything is written, tells the destination.
    void finish_if_done() {
        if (finished || !source_ended || has_data()) {
            return;
        }
        finished = true;
        if (to_is_socket) {
            ::shutdown(to, SHUT_WR);
        } else {
            ::close(to); // a pipe has no half-close; the relay owns it at this point
        }
    }
};

} // namespace

void relay(RelaySide a, RelaySide b, int stop_fd, std::atomic<std::uint64_t>* a_to_b,
           std::atomic<std::uint64_t>* b_to_a) {
    for (int fd : {a.read_fd, a.write_fd, b.read_fd, b.write_fd}) {
        set_nonblocking(fd);
    }
    Direction directions[2] = {
        {a.read_fd, b.write_fd, is_socket(b.write_fd), a_to_b},
        {b.read_fd, a.write_fd, is_socket(a.write_fd), b_to_a},
    };
    while (!directions[0].finished || !directions[1].finished) {
        // Entries 0 and 1 belong to the directions (-1 when idle: poll skips negative fds).
        pollfd fds[3] = {{-1, 0, 0}, {-1, 0, 0}, {stop_fd, POLLIN, 0}};
        for (int i = 0; i < 2; ++i) {
            const Direction& direction = directions[i];
            if (direction.finished) {
                continue;
            }
            fds[i] = direction.has_data() ? pollfd{direction.to, POLLOUT, 0}
                                          : pollfd{direction.from, POLLIN, 0};
        }
        // No timeout: a build may hold a quiet connection open for long; the stop event ends
        // the relay when the gateway goes away.
        if (::poll(fds, 3, -1) < 0) {
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
            const bool ok = direction.has_data() ? direction.drain() : direction.fill();
            if (!ok) {
                return; // a reset or a broken pipe ends both directions
            }
            direction.finish_if_done();
        }
    }
}

} // namespace contractor::gateway

#include "gateway/socket.hpp"

#include "util/error.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

namespace contractor::gateway {

namespace {

using Clock = std::chrono::steady_clock;

std::string system_error_text(int error) {
    return std::strerror(error);
}

int milliseconds_left(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left <= 0 ? 0 : static_cast<int>(left);
}

// One connect attempt to one address, waiting up to `timeout` for the handshake.
Connected connect_address(const sockaddr_storage& address, int stop_fd,
                          std::chrono::milliseconds timeout) {
    Fd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        return {{}, system_error_text(errno)};
    }
    const socklen_t address_length =
        address.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), address_length) == 0) {
        return {std::move(fd), {}};
    }
    if (errno != EINPROGRESS) {
        return {{}, system_error_text(errno)};
    }
    switch (wait_for(fd.get(), POLLOUT, stop_fd, timeout)) {
    case Wait::stopped:
        return {{}, "the gateway is stopping"};
    case Wait::timed_out:
        return {{}, "connection timed out"};
    case Wait::ready:
        break;
    }
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
        error = errno;
    }
    if (error != 0) {
        return {{}, system_error_text(error)};
    }
    return {std::move(fd), {}};
}

} // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
    if (this != &other) {
        Fd old(fd_);
        fd_ = other.release();
    }
    return *this;
}

Fd::~Fd() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

int Fd::release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
}

Wait wait_for(int fd, short events, int stop_fd, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
        pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
        const int ready = ::poll(fds, 2, milliseconds_left(deadline));
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (fds[1].revents != 0) {
            return Wait::stopped;
        }
        if (ready > 0 || ready < 0) {
            // A poll error is reported as ready: the caller's next call on fd fails with a reason.
            return Wait::ready;
        }
        return Wait::timed_out;
    }
}

bool send_all(int fd, std::string_view data, int stop_fd, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
        const ssize_t sent = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (sent > 0) {
            data.remove_prefix(static_cast<std::size_t>(sent));
            continue;
        }
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            const auto left = std::chrono::milliseconds(milliseconds_left(deadline));
            if (left.count() == 0 || wait_for(fd, POLLOUT, stop_fd, left) != Wait::ready) {
                return false;
            }
            continue;
        }
        return false;
    }
    return true;
}

bool stop_requested(int stop_fd) {
    pollfd fd = {stop_fd, POLLIN, 0};
    return ::poll(&fd, 1, 0) > 0;
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) {
        ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    }
}

Fd listen_on_loopback(std::uint16_t& port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
        throw InfrastructureError("gateway: cannot create a socket: " + system_error_text(errno));
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0; // the kernel picks a free port
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd.get(), SOMAXCONN) != 0) {
        throw InfrastructureError("gateway: cannot listen on 127.0.0.1: " +
                                  system_error_text(errno));
    }
    socklen_t length = sizeof address;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        throw InfrastructureError("gateway: cannot read the listening port: " +
                                  system_error_text(errno));
    }
    port = ntohs(address.sin_port);
    return fd;
}

Fd make_stop_event() {
    Fd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) {
        throw InfrastructureError("gateway: cannot create an eventfd: " + system_error_text(errno));
    }
    return fd;
}

void fire_stop_event(int stop_fd) {
    const std::uint64_t one = 1;
    // Nothing to do on failure: the counter can only be full if the event has already fired.
    [[maybe_unused]] const ssize_t written = ::write(stop_fd, &one, sizeof one);
}

Connected connect_any(const std::vector<sockaddr_storage>& addresses, int stop_fd,
                      std::chrono::milliseconds timeout) {
    Connected last{{}, "no address to connect to"};
    for (const auto& address : addresses) {
        last = connect_address(address, stop_fd, timeout);
        if (last.fd.valid() || stop_requested(stop_fd)) {
            break;
        }
    }
    return last;
}

} // namespace contractor::gateway

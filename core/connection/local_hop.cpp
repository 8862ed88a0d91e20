#include "connection/local_hop.hpp"

#include "proc/process.hpp"
#include "util/error.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace contractor::connection {
namespace {

class LocalCommand : public RemoteCommand {
public:
    LocalCommand(const std::vector<std::string>& argv, ErrorSink on_stderr)
        : process_(argv), on_stderr_(std::move(on_stderr)) {}

    std::optional<std::size_t> read(char* data, std::size_t size,
                                    std::chrono::milliseconds timeout) override {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            // stderr is drained whenever it has data, so a chatty command cannot block on it
            // while we wait for stdout.
            std::array<pollfd, 2> fds{{{process_.stdout_fd(), POLLIN, 0},
                                       {stderr_open_ ? process_.stderr_fd() : -1, POLLIN, 0}}};
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            const int ready = ::poll(fds.data(), fds.size(),
                                     static_cast<int>(std::max<long long>(0, left.count())));
            if (ready < 0 && errno != EINTR) {
                throw InfrastructureError(std::string("poll failed: ") + std::strerror(errno));
            }
            if (ready <= 0) {
                return std::nullopt;
            }
            if (fds[1].revents != 0) {
                std::array<char, 16384> buffer{};
                const ssize_t count = ::read(fds[1].fd, buffer.data(), buffer.size());
                if (count <= 0) {
                    stderr_open_ = false;
                } else if (on_stderr_) {
                    on_stderr_(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
                }
            }
            if (fds[0].revents != 0) {
                const ssize_t count = ::read(fds[0].fd, data, size);
                if (count < 0 && errno == EINTR) {
                    continue;
                }
                if (count < 0) {
                    throw InfrastructureError(std::string("cannot read from a local command: ") +
                                              std::strerror(errno));
                }
                return static_cast<std::size_t>(count);
            }
        }
    }

    void write(const char* data, std::size_t size) override {
        if (process_.stdin_fd() < 0) {
            throw InfrastructureError("cannot write to a local command: its input is closed");
        }
        write_all(process_.stdin_fd(), data, size, "a local command");
    }

    void close_write() override { process_.close_stdin(); }

    int wait() override {
        // Drain what is left of stderr so nothing the command said is lost.
        while (stderr_open_) {
            std::array<char, 16384> buffer{};
            const ssize_t count = ::read(process_.stderr_fd(), buffer.data(), buffer.size());
            if (count <= 0) {
                stderr_open_ = false;
            } else if (on_stderr_) {
                on_stderr_(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
            }
        }
        for (;;) {
            if (auto status = process_.wait_for(std::chrono::milliseconds(200))) {
                return *status;
            }
        }
    }

    void terminate() override { process_.terminate(std::chrono::seconds(10)); }

private:
    proc::PipedProcess process_;
    ErrorSink on_stderr_;
    bool stderr_open_ = true;
};

} // namespace

std::unique_ptr<RemoteCommand> LocalHop::start(const std::string& command, ErrorSink on_stderr) {
    return start_program({"/bin/sh", "-c", command}, std::move(on_stderr));
}

std::unique_ptr<RemoteCommand> LocalHop::start_program(const std::vector<std::string>& argv,
                                                       ErrorSink on_stderr) {
    return std::make_unique<LocalCommand>(argv, std::move(on_stderr));
}

std::unique_ptr<ByteStream> LocalHop::open_tunnel(const std::string& host, int port) {
    return connect_tcp(host, port);
}

SocketStream::~SocketStream() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::optional<std::size_t> SocketStream::read(char* data, std::size_t size,
                                              std::chrono::milliseconds timeout) {
    if (!wait_readable(fd_, timeout)) {
        return std::nullopt;
    }
    for (;;) {
        const ssize_t count = ::recv(fd_, data, size, 0);
        if (count >= 0) {
            return static_cast<std::size_t>(count);
        }
        if (errno == ECONNRESET) {
            return 0;
        }
        if (errno != EINTR) {
            throw InfrastructureError(std::string("cannot read from a socket: ") +
                                      std::strerror(errno));
        }
    }
}

void SocketStream::write(const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t sent = ::send(fd_, data, size, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR) {
            continue;
        }
        if (sent < 0) {
            throw InfrastructureError(std::string("cannot write to a socket: ") +
                                      std::strerror(errno));
        }
        data += sent;
        size -= static_cast<std::size_t>(sent);
    }
}

void SocketStream::close_write() {
    ::shutdown(fd_, SHUT_WR);
}

std::unique_ptr<SocketStream> connect_tcp(const std::string& host, int port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int error = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); error != 0) {
        throw InfrastructureError("cannot resolve " + host + ": " + gai_strerror(error));
    }
    std::string last_error = "no address";
    for (addrinfo* address = found; address != nullptr; address = address->ai_next) {
        const int fd =
            ::socket(address->ai_family, address->ai_socktype | SOCK_CLOEXEC, address->ai_protocol);
        if (fd < 0) {
            continue;
        }
        if (::connect(fd, address->ai_addr, address->ai_addrlen) == 0) {
            freeaddrinfo(found);
            return std::make_unique<SocketStream>(fd);
        }
        last_error = std::strerror(errno);
        ::close(fd);
    }
    freeaddrinfo(found);
    throw InfrastructureError("cannot connect to " + host + ":" + service + ": " + last_error);
}

} // namespace contractor::connection

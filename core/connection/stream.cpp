#include "connection/stream.hpp"

#include "util/error.hpp"

#include <cerrno>
#include <cstring>
#include <poll.h>
#include <unistd.h>

namespace contractor::connection {

bool wait_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd entry{fd, POLLIN, 0};
    const int milliseconds = static_cast<int>(std::min<long long>(timeout.count(), 1 << 30));
    for (;;) {
        const int ready = ::poll(&entry, 1, milliseconds);
        if (ready >= 0) {
            return ready > 0;
        }
        if (errno != EINTR) {
            throw InfrastructureError(std::string("poll failed: ") + std::strerror(errno));
        }
        // A signal (Ctrl-C) arrived: report "nothing yet" so the caller checks cancellation.
        return false;
    }
}

void write_all(int fd, const char* data, std::size_t size, const char* what) {
    while (size > 0) {
        const ssize_t written = ::write(fd, data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw InfrastructureError(std::string("cannot write to ") + what + ": " +
                                      std::strerror(errno));
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
}

std::optional<std::size_t> FdStream::read(char* data, std::size_t size,
                                          std::chrono::milliseconds timeout) {
    if (!wait_readable(read_fd_, timeout)) {
        return std::nullopt;
    }
    for (;;) {
        const ssize_t count = ::read(read_fd_, data, size);
        if (count >= 0) {
            return static_cast<std::size_t>(count);
        }
        if (errno != EINTR) {
            throw InfrastructureError(std::string("cannot read: ") + std::strerror(errno));
        }
    }
}

void FdStream::write(const char* data, std::size_t size) {
    write_all(write_fd_, data, size, "the connection");
}

void FdStream::close_write() {
    if (write_fd_ >= 0) {
        ::close(write_fd_);
        write_fd_ = -1;
    }
}

} // namespace contractor::connection

#pragma once

#include <chrono>
#include <cstddef>
#include <optional>

// A two-way byte stream: a pipe pair, a remote command's stdin and stdout, a tunnel. The
// connection chain and the message protocol are written against this interface only.
namespace contractor::connection {

class ByteStream {
public:
    virtual ~ByteStream() = default;

    // Reads up to `size` bytes: the count read, 0 at end of stream, nullopt when nothing
    // arrived within `timeout`. Throws InfrastructureError when the stream breaks.
    virtual std::optional<std::size_t> read(char* data, std::size_t size,
                                            std::chrono::milliseconds timeout) = 0;
    // Writes all of `data`; throws InfrastructureError when the other side is gone.
    virtual void write(const char* data, std::size_t size) = 0;
    // Signals end of input to the other side; reading goes on.
    virtual void close_write() = 0;
};

// A stream over two file descriptors it does not own (e.g. a process's stdin and stdout).
class FdStream : public ByteStream {
public:
    FdStream(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {}

    std::optional<std::size_t> read(char* data, std::size_t size,
                                    std::chrono::milliseconds timeout) override;
    void write(const char* data, std::size_t size) override;
    void close_write() override;

private:
    int read_fd_;
    int write_fd_;
};

// Waits until `fd` is readable; false on timeout.
bool wait_readable(int fd, std::chrono::milliseconds timeout);
// Writes all of `data` to `fd`, retrying on EINTR; throws InfrastructureError naming `what`.
void write_all(int fd, const char* data, std::size_t size, const char* what);

} // namespace contractor::connection

#pragma once

#include "connection/hop.hpp"

#include <vector>

namespace contractor::connection {

// The machine contractor runs on: commands are child processes, tunnels are TCP connections.
class LocalHop : public Hop {
public:
    std::string describe() const override { return "the local host"; }
    std::unique_ptr<RemoteCommand> start(const std::string& command,
                                         ErrorSink on_stderr = {}) override;
    std::unique_ptr<ByteStream> open_tunnel(const std::string& host, int port) override;

    // Starts a program directly, without a shell.
    std::unique_ptr<RemoteCommand> start_program(const std::vector<std::string>& argv,
                                                 ErrorSink on_stderr = {});
};

// A connected TCP socket, owned; closed on destruction.
class SocketStream : public ByteStream {
public:
    explicit SocketStream(int fd) : fd_(fd) {}
    ~SocketStream() override;
    SocketStream(const SocketStream&) = delete;
    SocketStream& operator=(const SocketStream&) = delete;

    std::optional<std::size_t> read(char* data, std::size_t size,
                                    std::chrono::milliseconds timeout) override;
    void write(const char* data, std::size_t size) override;
    void close_write() override;
    int fd() const { return fd_; }

private:
    int fd_;
};

// A TCP connection to host:port (numeric or resolvable), within `timeout`.
std::unique_ptr<SocketStream> connect_tcp(const std::string& host, int port);

} // namespace contractor::connection

#pragma once

#include "connection/hop.hpp"
#include "ssh/session.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

namespace contractor::connection {

// An SSH server, with its host key pinned: reached over a TCP socket, or through a tunnel
// the previous hop opened. Commands are exec channels; tunnels are direct-tcpip channels.
// libssh sessions are not thread-safe, so every call on the session holds one mutex; a
// tunnel's pump thread and the owner can then share the session.
class SshHop : public Hop {
public:
    // Connects to endpoint.host:endpoint.port.
    SshHop(const ssh::Endpoint& endpoint, std::chrono::milliseconds timeout);
    // Uses a session already connected to `endpoint`.
    SshHop(const ssh::Endpoint& endpoint, std::unique_ptr<ssh::Session> session);
    // Connects through `tunnel` (from the previous hop's open_tunnel), which it keeps.
    SshHop(const ssh::Endpoint& endpoint, std::unique_ptr<ByteStream> tunnel,
           std::chrono::milliseconds timeout);
    ~SshHop() override;
    SshHop(const SshHop&) = delete;
    SshHop& operator=(const SshHop&) = delete;

    std::string describe() const override;
    std::unique_ptr<RemoteCommand> start(const std::string& command,
                                         ErrorSink on_stderr = {}) override;
    std::unique_ptr<ByteStream> open_tunnel(const std::string& host, int port) override;

private:
    void pump_tunnel(int socket_fd);

    ssh::Endpoint endpoint_;
    std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
    std::unique_ptr<ByteStream> tunnel_;
    std::atomic<bool> stopping_{false};
    std::thread pump_;
    int pump_fd_ = -1;
    std::unique_ptr<ssh::Session> session_;
};

} // namespace contractor::connection

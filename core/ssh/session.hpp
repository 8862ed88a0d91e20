#pragma once

#include "ssh/handles.hpp"
#include "util/error.hpp"

#include <chrono>
#include <functional>
#include <string>

namespace contractor::ssh {

// Where to connect and whom to trust: the host key is pinned (known before connecting, from
// the seed we wrote), never learned on first use.
struct Endpoint {
    std::string host = "127.0.0.1";
    int port = 22;
    std::string user;
    std::string pinned_host_key; // "ssh-ed25519 AAAA..."
    std::string private_key;     // the client key, OpenSSH format
};

// How a remote command ended.
struct CommandResult {
    int exit_status = -1;
    std::string output; // stdout and stderr
};

// Why a connection attempt failed; `refused` means nothing answered (yet).
enum class ConnectFailure { none, refused, host_key_mismatch, auth_denied, other };

// One authenticated SSH connection. Closed and freed on destruction.
class Session {
public:
    // Connects, checks the server's key against the pinned one and authenticates with the
    // client key. Throws ConnectError (an InfrastructureError) naming what failed.
    // With `socket_fd` >= 0 the session runs over that connected socket (a tunnel through
    // another hop) instead of connecting to endpoint.host itself; libssh closes it when done.
    // Connecting and authenticating may take `connect_timeout` (`timeout` when zero) in all;
    // they poll for Ctrl-C meanwhile (Interrupted). `timeout` then bounds each blocking call.
    explicit Session(const Endpoint& endpoint, std::chrono::milliseconds timeout,
                     int socket_fd = -1,
                     std::chrono::milliseconds connect_timeout = std::chrono::milliseconds(0));

    // The libssh session, for channels (connection::SshHop). Not thread-safe: one user at a
    // time.
    ssh_session raw() const { return session_.get(); }

    // Runs `command` through the remote shell and waits for it.
    CommandResult run(const std::string& command);

    // A channel running `command`, or a tunnel to host:port from the server's side. Waits up
    // to the channel patience for the server to answer, polling for Ctrl-C (Interrupted);
    // throws ConnectError naming what failed. Not thread-safe, like raw().
    ChannelPtr open_exec(const std::string& command);
    ChannelPtr open_forward(const std::string& host, int port);

    // How long a server may take to open a channel; the connect timeout unless set. A worker
    // inside the manager VM under TCG can need minutes while another connection's key exchange
    // holds its only vCPU; the manager VM itself must answer within the CLI's bound.
    void set_channel_patience(std::chrono::milliseconds patience) { patience_ = patience; }

private:
    // Repeats a libssh call that answers SSH_AGAIN while the server has not replied yet.
    int patiently(const std::function<int()>& call, const std::string& what);

    SessionPtr session_;
    long timeout_usec_ = 0;
    std::chrono::milliseconds patience_;
};

// The error Session's constructor throws, with the kind of failure: an infrastructure error
// (exit 4) when nothing above handles it.
class ConnectError : public InfrastructureError {
public:
    ConnectError(ConnectFailure failure, const std::string& what)
        : InfrastructureError(what), failure_(failure) {}
    ConnectFailure failure() const { return failure_; }

private:
    ConnectFailure failure_;
};

} // namespace contractor::ssh

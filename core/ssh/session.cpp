#include "ssh/session.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <cstring>
#include <poll.h>

namespace contractor::ssh {
namespace {

std::string last_error(ssh_session session) {
    return ssh_get_error(session);
}

// The base64 part of an "ssh-ed25519 AAAA... comment" line.
std::string key_body(const std::string& line) {
    const std::size_t start = line.find(' ');
    if (start == std::string::npos) {
        return line;
    }
    const std::size_t end = line.find(' ', start + 1);
    return line.substr(start + 1, end == std::string::npos ? end : end - start - 1);
}

// One step of a non-blocking connect or authentication that answered "again": waits up to
// 20 ms for the server's next bytes. Throws Interrupted on Ctrl-C and ConnectError (as if
// nothing answered) once `deadline` has passed.
void wait_for_server(ssh_session session, const Endpoint& endpoint,
                     std::chrono::steady_clock::time_point deadline,
                     std::chrono::milliseconds allowed) {
    if (util::cancel_requested()) {
        throw Interrupted(util::cancel_signal());
    }
    if (std::chrono::steady_clock::now() >= deadline) {
        throw ConnectError(ConnectFailure::refused, "cannot connect to " + endpoint.host + ":" +
                                                        std::to_string(endpoint.port) +
                                                        ": Timeout: no SSH handshake within " +
                                                        std::to_string(allowed.count() / 1000) +
                                                        " s");
    }
    pollfd wanted{ssh_get_fd(session), POLLIN, 0};
    if (wanted.fd < 0 || ::poll(&wanted, 1, 20) < 0) {
        ::poll(nullptr, 0, 20);
    }
}

} // namespace

Session::Session(const Endpoint& endpoint, std::chrono::milliseconds timeout, int socket_fd,
                 std::chrono::milliseconds connect_timeout)
    : session_(ssh_new()), patience_(timeout) {
    if (!session_) {
        throw ConnectError(ConnectFailure::other, "libssh could not create a session");
    }
    ssh_session s = session_.get();
    // The timeout bounds each blocking call (connect, key exchange, auth): a worker that
    // stopped answering must surface as an error, never as a hang.
    timeout_usec_ = static_cast<long>(timeout.count()) * 1000;
    const int nodelay = 1;
    const int no_config = 0;
    ssh_options_set(s, SSH_OPTIONS_HOST, endpoint.host.c_str());
    ssh_options_set(s, SSH_OPTIONS_PORT, &endpoint.port);
    ssh_options_set(s, SSH_OPTIONS_USER, endpoint.user.c_str());
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &timeout_usec_);
    ssh_options_set(s, SSH_OPTIONS_NODELAY, &nodelay);
    ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no_config);
    // Never read or write ~/.ssh/known_hosts: the key is checked against the pinned one below.
    ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, "/dev/null");
    ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
    ssh_options_set(s, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519");
    if (socket_fd >= 0) {
        socket_t fd = socket_fd;
        ssh_options_set(s, SSH_OPTIONS_FD, &fd);
    }

    // Non-blocking until authenticated, so a slow server (a worker inside the manager under
    // TCG can take minutes for its first key exchange) is waited for as long as the caller
    // allows, and Ctrl-C still ends the wait at once.
    const std::chrono::milliseconds allowed =
        connect_timeout.count() > 0 ? connect_timeout : timeout;
    const auto deadline = std::chrono::steady_clock::now() + allowed;
    ssh_set_blocking(s, 0);
    int connected = SSH_AGAIN;
    while ((connected = ssh_connect(s)) == SSH_AGAIN) {
        wait_for_server(s, endpoint, deadline, allowed);
    }
    if (connected != SSH_OK) {
        const std::string error = last_error(s);
        const bool refused = error.find("refused") != std::string::npos ||
                             error.find("Connection reset") != std::string::npos ||
                             error.find("Socket error: disconnected") != std::string::npos ||
                             error.find("Timeout") != std::string::npos;
        throw ConnectError(refused ? ConnectFailure::refused : ConnectFailure::other,
                           "cannot connect to " + endpoint.host + ":" +
                               std::to_string(endpoint.port) + ": " + error);
    }
    ssh_key server_raw = nullptr;
    if (ssh_get_server_publickey(s, &server_raw) != SSH_OK) {
        throw ConnectError(ConnectFailure::other, "no host key from the server: " + last_error(s));
    }
    const KeyPtr server_key(server_raw);
    char* server_text = nullptr;
    ssh_pki_export_pubkey_base64(server_key.get(), &server_text);
    const StringPtr server_owner(server_text);
    if (server_text == nullptr || key_body(endpoint.pinned_host_key) != server_text) {
        throw ConnectError(ConnectFailure::host_key_mismatch,
                           "the host key of " + endpoint.host + ":" +
                               std::to_string(endpoint.port) +
                               " is not the one contractor gave it; refusing to connect");
    }
    ssh_key client_raw = nullptr;
    if (ssh_pki_import_privkey_base64(endpoint.private_key.c_str(), nullptr, nullptr, nullptr,
                                      &client_raw) != SSH_OK) {
        throw ConnectError(ConnectFailure::other, "cannot read the client key");
    }
    const KeyPtr client_key(client_raw);
    int auth = SSH_AUTH_AGAIN;
    while ((auth = ssh_userauth_publickey(s, nullptr, client_key.get())) == SSH_AUTH_AGAIN) {
        wait_for_server(s, endpoint, deadline, allowed);
    }
    ssh_set_blocking(s, 1);
    if (auth != SSH_AUTH_SUCCESS) {
        throw ConnectError(
            auth == SSH_AUTH_DENIED ? ConnectFailure::auth_denied : ConnectFailure::other,
            "the server refused the key for " + endpoint.user + ": " + last_error(s));
    }
}

int Session::patiently(const std::function<int()>& call, const std::string& what) {
    ssh_session s = session_.get();
    // Short slices, so Ctrl-C is noticed; the session's own timeout comes back afterwards.
    const long slice_usec = 1000 * 1000;
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &slice_usec);
    const auto deadline = std::chrono::steady_clock::now() + patience_;
    int result = SSH_AGAIN;
    while ((result = call()) == SSH_AGAIN && std::chrono::steady_clock::now() < deadline &&
           !util::cancel_requested()) {
    }
    ssh_options_set(s, SSH_OPTIONS_TIMEOUT_USEC, &timeout_usec_);
    if (result == SSH_OK) {
        return result;
    }
    if (result == SSH_AGAIN && util::cancel_requested()) {
        throw Interrupted(util::cancel_signal());
    }
    const std::string error = last_error(s);
    throw ConnectError(ConnectFailure::other,
                       "cannot " + what + ": " +
                           (result == SSH_AGAIN || error.empty()
                                ? "the server did not answer within " +
                                      std::to_string(patience_.count() / 1000) + " s"
                                : error));
}

ChannelPtr Session::open_exec(const std::string& command) {
    ChannelPtr channel(ssh_channel_new(session_.get()));
    if (!channel) {
        throw ConnectError(ConnectFailure::other,
                           "libssh could not create a channel: " + last_error(session_.get()));
    }
    patiently([&] { return ssh_channel_open_session(channel.get()); }, "open an SSH channel");
    patiently([&] { return ssh_channel_request_exec(channel.get(), command.c_str()); },
              "start a command over SSH");
    return channel;
}

ChannelPtr Session::open_forward(const std::string& host, int port) {
    ChannelPtr channel(ssh_channel_new(session_.get()));
    if (!channel) {
        throw ConnectError(ConnectFailure::other,
                           "libssh could not create a channel: " + last_error(session_.get()));
    }
    patiently(
        [&] { return ssh_channel_open_forward(channel.get(), host.c_str(), port, "127.0.0.1", 0); },
        "open a tunnel to " + host + ":" + std::to_string(port));
    return channel;
}

CommandResult Session::run(const std::string& command) {
    const ChannelPtr channel = open_exec(command);
    CommandResult result;
    char buffer[16384];
    // Reads in short slices until the command's end: a blocking read would give up (return 0)
    // after the session's timeout, cutting off a command that runs longer.
    for (;;) {
        for (int is_stderr : {1, 0}) {
            const int count = ssh_channel_read_timeout(channel.get(), buffer, sizeof buffer,
                                                       is_stderr, is_stderr ? 0 : 100);
            if (count == SSH_ERROR) {
                throw ConnectError(ConnectFailure::other,
                                   "reading command output failed: " + last_error(session_.get()));
            }
            result.output.append(buffer, static_cast<std::size_t>(std::max(count, 0)));
        }
        if (ssh_channel_is_eof(channel.get()) || ssh_channel_is_closed(channel.get())) {
            break;
        }
    }
    ssh_channel_send_eof(channel.get());
    result.exit_status = ssh_channel_get_exit_status(channel.get());
    return result;
}

} // namespace contractor::ssh

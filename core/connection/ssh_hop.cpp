#include "connection/ssh_hop.hpp"

#include "ssh/handles.hpp"
#include "util/error.hpp"

#include <array>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace contractor::connection {
namespace {

// How long one libssh read waits while holding the session lock: short, so a tunnel's pump
// and the owner take turns, and a caller's timeout is honoured to within this slice.
constexpr int slice_ms = 20;

// The most stderr one read() passes on before it turns to stdout: a command that floods
// stderr must not keep read() (and so its caller's limit checks) from returning.
constexpr std::size_t stderr_per_read = 256 * 1024;

std::string session_error(ssh_session session) {
    return ssh_get_error(session);
}

// A channel of the session: a command's stdin/stdout, or a tunnel.
class SshChannelStream : public RemoteCommand {
public:
    SshChannelStream(std::shared_ptr<std::mutex> mutex, ssh_session session,
                     ssh::ChannelPtr channel, ErrorSink on_stderr)
        : mutex_(std::move(mutex)), session_(session), channel_(std::move(channel)),
          on_stderr_(std::move(on_stderr)) {}

    ~SshChannelStream() override {
        const std::lock_guard lock(*mutex_);
        channel_.reset();
    }

    std::optional<std::size_t> read(char* data, std::size_t size,
                                    std::chrono::milliseconds timeout) override {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        do {
            const std::lock_guard lock(*mutex_);
            ssh_channel channel = channel_.get();
            std::size_t drained = 0;
            while (drained < stderr_per_read && ssh_channel_poll(channel, 1) > 0) {
                std::array<char, 16384> buffer{};
                const int count =
                    ssh_channel_read_nonblocking(channel, buffer.data(), buffer.size(), 1);
                if (count <= 0) {
                    break;
                }
                drained += static_cast<std::size_t>(count);
                if (on_stderr_) {
                    on_stderr_(std::string_view(buffer.data(), static_cast<std::size_t>(count)));
                }
            }
            const int count = ssh_channel_read_timeout(
                channel, data, static_cast<std::uint32_t>(std::min<std::size_t>(size, 1 << 20)), 0,
                slice_ms);
            if (count == SSH_ERROR) {
                throw InfrastructureError("the SSH channel broke: " + session_error(session_));
            }
            if (count > 0) {
                return static_cast<std::size_t>(count);
            }
            if (ssh_channel_is_eof(channel) || ssh_channel_is_closed(channel)) {
                return 0;
            }
        } while (std::chrono::steady_clock::now() < deadline);
        return std::nullopt;
    }

    void write(const char* data, std::size_t size) override {
        const std::lock_guard lock(*mutex_);
        while (size > 0) {
            const int written =
                ssh_channel_write(channel_.get(), data,
                                  static_cast<std::uint32_t>(std::min<std::size_t>(size, 1 << 20)));
            if (written == SSH_ERROR) {
                throw InfrastructureError("cannot write to the SSH channel: " +
                                          session_error(session_));
            }
            data += written;
            size -= static_cast<std::size_t>(written);
        }
    }

    void close_write() override {
        const std::lock_guard lock(*mutex_);
        ssh_channel_send_eof(channel_.get());
    }

    int wait() override {
        std::array<char, 65536> sink{};
        // Output nobody read is drained: the exit status comes after it.
        while (read(sink.data(), sink.size(), std::chrono::hours(1)).value_or(1) != 0) {
        }
        const std::lock_guard lock(*mutex_);
        const int status = ssh_channel_get_exit_status(channel_.get());
        // -1: the command was killed by a signal (or the channel closed without a status).
        return status < 0 ? 255 : status;
    }

    void terminate() override {
        const std::lock_guard lock(*mutex_);
        ssh_channel_request_send_signal(channel_.get(), "TERM");
        ssh_channel_close(channel_.get());
    }

private:
    std::shared_ptr<std::mutex> mutex_;
    ssh_session session_;
    ssh::ChannelPtr channel_;
    ErrorSink on_stderr_;
};

} // namespace

SshHop::SshHop(const ssh::Endpoint& endpoint, std::chrono::milliseconds timeout)
    : endpoint_(endpoint), session_(std::make_unique<ssh::Session>(endpoint, timeout)) {}

SshHop::SshHop(const ssh::Endpoint& endpoint, std::unique_ptr<ssh::Session> session)
    : endpoint_(endpoint), session_(std::move(session)) {}

SshHop::SshHop(const ssh::Endpoint& endpoint, std::unique_ptr<ByteStream> tunnel,
               std::chrono::milliseconds timeout)
    : endpoint_(endpoint), tunnel_(std::move(tunnel)) {
    // libssh needs a socket: one end of a socket pair goes to libssh, the other is pumped to
    // and from the tunnel by a thread.
    std::array<int, 2> pair{};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair.data()) != 0) {
        throw InfrastructureError("cannot create a socket pair for an SSH tunnel");
    }
    pump_fd_ = pair[1];
    pump_ = std::thread([this] { pump_tunnel(pump_fd_); });
    try {
        session_ = std::make_unique<ssh::Session>(endpoint, timeout, pair[0]);
    } catch (...) {
        stopping_ = true;
        pump_.join();
        ::close(pump_fd_);
        throw;
    }
}

SshHop::~SshHop() {
    session_.reset();
    stopping_ = true;
    if (pump_.joinable()) {
        pump_.join();
        ::close(pump_fd_);
    }
}

std::string SshHop::describe() const {
    return "ssh " + endpoint_.user + "@" + endpoint_.host + ":" + std::to_string(endpoint_.port) +
           (tunnel_ ? " (tunnelled)" : "");
}

void SshHop::pump_tunnel(int socket_fd) {
    std::array<char, 65536> buffer{};
    try {
        while (!stopping_) {
            if (wait_readable(socket_fd, std::chrono::milliseconds(0))) {
                const ssize_t count = ::read(socket_fd, buffer.data(), buffer.size());
                if (count <= 0) {
                    tunnel_->close_write();
                    return;
                }
                tunnel_->write(buffer.data(), static_cast<std::size_t>(count));
            }
            const auto count =
                tunnel_->read(buffer.data(), buffer.size(), std::chrono::milliseconds(slice_ms));
            if (count && *count == 0) {
                ::shutdown(socket_fd, SHUT_WR);
                return;
            }
            if (count) {
                write_all(socket_fd, buffer.data(), *count, "an SSH tunnel");
            }
        }
    } catch (const std::exception&) {
        // The tunnel broke: libssh sees its socket close and reports the error to the owner.
        ::shutdown(socket_fd, SHUT_RDWR);
    }
}

std::unique_ptr<RemoteCommand> SshHop::start(const std::string& command, ErrorSink on_stderr) {
    const std::lock_guard lock(*mutex_);
    ssh::ChannelPtr channel;
    try {
        channel = session_->open_exec(command);
    } catch (const ssh::ConnectError& error) {
        throw InfrastructureError("cannot run a command on " + describe() + ": " + error.what());
    }
    return std::make_unique<SshChannelStream>(mutex_, session_->raw(), std::move(channel),
                                              std::move(on_stderr));
}

std::unique_ptr<ByteStream> SshHop::open_tunnel(const std::string& host, int port) {
    const std::lock_guard lock(*mutex_);
    ssh::ChannelPtr channel;
    try {
        channel = session_->open_forward(host, port);
    } catch (const ssh::ConnectError& error) {
        throw InfrastructureError("through " + describe() + ": " + error.what());
    }
    return std::make_unique<SshChannelStream>(mutex_, session_->raw(), std::move(channel),
                                              ErrorSink{});
}

} // namespace contractor::connection

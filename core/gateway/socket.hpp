#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

// Sockets for the gateway: an owning descriptor, waits that a stop event interrupts, and
// connects with a deadline. Every descriptor here is non-blocking.
namespace contractor::gateway {

// Owns one file descriptor and closes it exactly once.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(other.release()) {}
    Fd& operator=(Fd&& other) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd();

    int get() const { return fd_; }
    bool valid() const { return fd_ >= 0; }
    // Gives up ownership without closing.
    int release();

private:
    int fd_ = -1;
};

// How a wait ended.
enum class Wait { ready, timed_out, stopped };

// Waits until `fd` has one of `events` (poll flags), `stop_fd` becomes readable, or `timeout`
// passes. Errors and hang-ups on `fd` count as ready, so the next call on it reports them.
Wait wait_for(int fd, short events, int stop_fd, std::chrono::milliseconds timeout);

// Sends all of `data` on the non-blocking socket `fd`; false when the peer went away, the
// stop event fired or `timeout` passed. Never raises SIGPIPE.
bool send_all(int fd, std::string_view data, int stop_fd, std::chrono::milliseconds timeout);

// Makes `fd` non-blocking.
void set_nonblocking(int fd);

// A listening TCP socket on 127.0.0.1 on a free port, and that port. Throws
// InfrastructureError when the system refuses.
Fd listen_on_loopback(std::uint16_t& port);

// An eventfd that the owner writes once to tell every waiting thread to stop.
Fd make_stop_event();
// Whether the stop event has fired.
bool stop_requested(int stop_fd);
// Fires the stop event: from then on it stays readable.
void fire_stop_event(int stop_fd);

// A connected non-blocking socket, or why there is none.
struct Connected {
    Fd fd;
    std::string error; // empty when fd is valid
};

// Connects to the first of `addresses` that answers (each a checked address: see
// address_policy.hpp), giving up after `timeout` per address or when the stop event fires.
Connected connect_any(const std::vector<sockaddr_storage>& addresses, int stop_fd,
                      std::chrono::milliseconds timeout);

} // namespace contractor::gateway

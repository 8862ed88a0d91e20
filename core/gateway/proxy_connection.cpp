#include "gateway/proxy_connection.hpp"

#include "gateway/request_body.hpp"

#include <cerrno>
#include <chrono>
#include <poll.h>
#include <unistd.h>

namespace contractor::gateway {

namespace {

using std::chrono::seconds;

// A client sends its request right after connecting; one that stays silent this long must not
// hold a thread (the stop event still ends the wait early).
constexpr seconds head_timeout(30);
// A client that pauses this long in the middle of a request body has given up on it.
constexpr seconds body_idle_timeout(60);
// A destination that drops packets would otherwise leave apt waiting for the kernel's own
// connect timeout (about two minutes); 20 s fails faster while tolerating a slow mirror.
constexpr seconds connect_timeout(20);
// An upstream proxy answers CONNECT once it has connected itself, which takes up to its own
// connect timeout; give it somewhat longer than ours.
constexpr seconds upstream_answer_timeout(30);
// The gateway's own short answers (200, 400, 403, 502) and the request head fit in socket
// buffers; a peer that takes longer than this to accept them is not reading.
constexpr seconds send_timeout(10);

// A head read from a socket: the head, and any bytes that came after it.
struct HeadRead {
    std::string bytes;
    std::size_t head_size = 0; // 0 when no complete head arrived
    bool too_large = false;
};

HeadRead read_head(int fd, int stop_fd, seconds timeout) {
    HeadRead read;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[8192];
    while (read.bytes.size() < max_head_size) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || wait_for(fd, POLLIN, stop_fd, left) != Wait::ready) {
            return read;
        }
        const ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            continue;
        }
        if (got <= 0) {
            return read;
        }
        // Look again only at the new bytes and the three before them, which may start the end.
        const std::size_t from = read.bytes.size() < 3 ? 0 : read.bytes.size() - 3;
        read.bytes.append(chunk, static_cast<std::size_t>(got));
        if (const auto length = head_length(std::string_view(read.bytes).substr(from))) {
            read.head_size = from + *length;
            return read;
        }
    }
    read.too_large = true;
    return read;
}

void answer(int client, int stop_fd, int status, std::string_view reason, std::string_view body) {
    send_all(client, text_response(status, reason, body), stop_fd, send_timeout);
}

// Sends `bytes` and meters them; false when the peer went away or the budget is spent.
bool forward(int fd, std::string_view bytes, int stop_fd, const FlowMeter& meter) {
    if (bytes.empty()) {
        return true;
    }
    return meter_bytes(meter, bytes.size()) && send_all(fd, bytes, stop_fd, send_timeout);
}

// Asks the upstream proxy for a tunnel; returns what the proxy sent after its answer, or
// nullopt (having told the client why) when it refused.
std::optional<std::string> open_upstream_tunnel(int client, int upstream,
                                                const ProxyRequest& request, int stop_fd) {
    const std::string target = format_authority(request.destination);
    if (!send_all(upstream, connect_request_head(request.destination), stop_fd, send_timeout)) {
        answer(client, stop_fd, 502, "Bad Gateway",
               "contractor gateway: the upstream proxy did not take the CONNECT for " + target +
                   "\n");
        return std::nullopt;
    }
    HeadRead response = read_head(upstream, stop_fd, upstream_answer_timeout);
    const std::string_view head = std::string_view(response.bytes).substr(0, response.head_size);
    const auto status = response.head_size > 0 ? response_status(head) : std::nullopt;
    if (!status || *status < 200 || *status > 299) {
        const std::string line(head.substr(0, head.find_first_of("\r\n")));
        answer(client, stop_fd, 502, "Bad Gateway",
               "contractor gateway: the upstream proxy refused CONNECT to " + target +
                   (line.empty() ? std::string(" (no answer)") : ": " + line) + "\n");
        return std::nullopt;
    }
    return response.bytes.substr(response.head_size);
}

void serve_proxy(Fd client, const ConnectionEnvironment& environment) {
    const int stop_fd = environment.stop_fd;
    set_nonblocking(client.get());
    const HeadRead read = read_head(client.get(), stop_fd, head_timeout);
    if (read.too_large) {
        answer(client.get(), stop_fd, 400, "Bad Request",
               "contractor gateway: request head larger than 64 KiB\n");
    }
    if (read.head_size == 0) {
        return;
    }
    auto parsed = parse_request_head(std::string_view(read.bytes).substr(0, read.head_size));
    if (const auto* bad = std::get_if<BadRequest>(&parsed)) {
        answer(client.get(), stop_fd, 400, "Bad Request",
               "contractor gateway: " + bad->reason + "\n");
        return;
    }
    const ProxyRequest& request = std::get<ProxyRequest>(parsed);
    const std::string target = format_authority(request.destination);

    const Admission admission = environment.admit(request.destination, request.protocol);
    if (!admission.allowed) {
        answer(client.get(), stop_fd, 403, "Forbidden",
               "contractor gateway: " + target + " (" +
                   std::string(policy::to_string(request.protocol)) +
                   ") refused: " + admission.refusal + "\n");
        return;
    }
    const bool via_proxy = environment.upstream_proxy.has_value();
    Connected upstream = admission.addresses.empty()
                             ? Connected{{}, admission.unreachable}
                             : connect_any(admission.addresses, stop_fd, connect_timeout);
    if (!upstream.fd.valid()) {
        answer(client.get(), stop_fd, 502, "Bad Gateway",
               "contractor gateway: cannot reach " +
                   (via_proxy
                        ? "the upstream proxy " + format_authority(*environment.upstream_proxy)
                        : target) +
                   ": " + upstream.error + "\n");
        return;
    }
    const int up = upstream.fd.get();
    const std::string_view after_head = std::string_view(read.bytes).substr(read.head_size);

    if (request.protocol == policy::Protocol::https) {
        std::string from_proxy;
        if (via_proxy) {
            auto rest = open_upstream_tunnel(client.get(), up, request, stop_fd);
            if (!rest) {
                return;
            }
            from_proxy = std::move(*rest);
        }
        if (!send_all(client.get(), "HTTP/1.1 200 Connection established\r\n\r\n", stop_fd,
                      send_timeout) ||
            !forward(client.get(), from_proxy, stop_fd, admission.down) ||
            !forward(up, after_head, stop_fd, admission.up)) {
            return;
        }
        relay({client.get(), client.get()}, {up, up}, stop_fd, admission.up, admission.down);
        return;
    }
    // http: the head, exactly one body, then only the answer comes back. Whatever the client
    // sends after its body (a second, pipelined request) is dropped: one request per
    // connection, so a request can never reach a host the allowlist did not see.
    if (!send_all(up, upstream_request_head(request, via_proxy), stop_fd, send_timeout)) {
        answer(client.get(), stop_fd, 502, "Bad Gateway",
               "contractor gateway: " + target + " did not take the request\n");
        return;
    }
    const auto send_up = [&](std::string_view bytes) {
        return forward(up, bytes, stop_fd, admission.up);
    };
    const BodyForwarded body = forward_request_body(client.get(), request.body, after_head, send_up,
                                                    stop_fd, body_idle_timeout);
    if (!body.ok) {
        answer(client.get(), stop_fd, 400, "Bad Request",
               "contractor gateway: " + body.error + "\n");
        return;
    }
    relay({client.get(), client.get()}, {up, up}, stop_fd, FlowMeter{}, admission.down,
          FromA::discard);
}

void serve_tcp(Fd client, const Endpoint& destination, const ConnectionEnvironment& environment) {
    const Admission admission = environment.admit(destination, policy::Protocol::tcp);
    if (!admission.allowed || admission.addresses.empty()) {
        return; // a raw TCP client has no way to read a reason: the report has it
    }
    Connected upstream = connect_any(admission.addresses, environment.stop_fd, connect_timeout);
    if (!upstream.fd.valid()) {
        return;
    }
    relay({client.get(), client.get()}, {upstream.fd.get(), upstream.fd.get()}, environment.stop_fd,
          admission.up, admission.down);
}

} // namespace

void serve_proxy_connection(Fd client, const ConnectionEnvironment& environment) noexcept {
    try {
        serve_proxy(std::move(client), environment);
    } catch (const std::exception&) {
        // Out of memory or a failing thread primitive: this connection closes, the gateway
        // and its other connections go on.
    }
}

void serve_tcp_connection(Fd client, const Endpoint& destination,
                          const ConnectionEnvironment& environment) noexcept {
    try {
        serve_tcp(std::move(client), destination, environment);
    } catch (const std::exception&) {
        // As above: only this connection ends.
    }
}

} // namespace contractor::gateway

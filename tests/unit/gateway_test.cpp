// Tests for gateway/gateway.hpp, the allowlisting proxy, with servers started on 127.0.0.1.
#include "gateway/gateway.hpp"
#include "gateway/socket.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using namespace contractor;
using namespace contractor::gateway;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using policy::Protocol;

namespace {

// Every blocking call in these tests gives up after this, so a broken gateway fails a test
// instead of hanging the suite.
void set_io_timeouts(int fd) {
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

Fd connect_to(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in address{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
    REQUIRE(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
    set_io_timeouts(fd.get());
    return fd;
}

void send_text(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        if (sent <= 0) {
            return;
        }
        text.remove_prefix(static_cast<std::size_t>(sent));
    }
}

// Reads `size` bytes, or until the peer closes (or the I/O timeout passes).
std::string read_bytes(int fd, std::size_t size = std::string::npos) {
    std::string out;
    char chunk[65536];
    ssize_t got = 0;
    while (out.size() < size &&
           (got = ::read(fd, chunk, std::min(sizeof chunk, size - out.size()))) > 0) {
        out.append(chunk, static_cast<std::size_t>(got));
    }
    return out;
}

// Reads a head byte by byte, so that nothing after it is consumed.
std::string read_head(int fd) {
    std::string head;
    char c = 0;
    while (!head.ends_with("\r\n\r\n") && ::read(fd, &c, 1) == 1) {
        head += c;
    }
    return head;
}

// A TCP server on 127.0.0.1 that hands each connection, one at a time, to `handle`.
class LoopbackServer {
public:
    explicit LoopbackServer(std::function<void(int)> handle) : handle_(std::move(handle)) {
        listener_ = listen_on_loopback(port_);
        thread_ = std::thread([this] { serve(); });
    }
    ~LoopbackServer() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }

private:
    void serve() {
        while (!stop_) {
            pollfd fd{listener_.get(), POLLIN, 0};
            if (::poll(&fd, 1, 20) <= 0) {
                continue;
            }
            Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (client.valid()) {
                ++connections_;
                set_io_timeouts(client.get());
                handle_(client.get());
            }
        }
    }

    std::function<void(int)> handle_;
    std::uint16_t port_ = 0;
    Fd listener_;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread thread_;
};

// What a test server received, one entry per connection.
struct Received {
    std::mutex mutex;
    std::vector<std::string> heads;

    void add(std::string head) {
        const std::lock_guard lock(mutex);
        heads.push_back(std::move(head));
    }
    std::string head(std::size_t index) {
        const std::lock_guard lock(mutex);
        return index < heads.size() ? heads[index] : std::string();
    }
};

// An HTTP server: records the head (and the body, by Content-Length), answers `body`.
std::function<void(int)> http_server(Received& received, std::string body) {
    return [&received, body](int fd) {
        std::string head = read_head(fd);
        const auto length_at = head.find("Content-Length: ");
        if (length_at != std::string::npos) {
            head += read_bytes(fd, std::stoul(head.substr(length_at + 16)));
        }
        received.add(head);
        send_text(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                          "\r\n\r\n" + body);
    };
}

std::vector<policy::EffectiveRule> allow(std::uint16_t port, Protocol protocol,
                                         std::string host = "127.0.0.1") {
    return {{{std::move(host), port, protocol}, policy::Origin::spec}};
}

// Sends a whole request through the gateway and returns the whole response.
std::string exchange(std::uint16_t gateway_port, const std::string& request) {
    const Fd client = connect_to(gateway_port);
    send_text(client.get(), request);
    return read_bytes(client.get());
}

std::string get_request(std::uint16_t port, const std::string& path) {
    return "GET http://127.0.0.1:" + std::to_string(port) + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nProxy-Connection: keep-alive\r\nUser-Agent: "
           "test\r\n\r\n";
}

// A port nothing listens on.
std::uint16_t unused_port() {
    std::uint16_t port = 0;
    const Fd closed_at_once = listen_on_loopback(port);
    return port;
}

} // namespace

TEST_CASE("an allowed GET reaches the server in origin-form with Connection: close", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "hello"));
    Gateway gateway(allow(server.port(), Protocol::http), "provision");

    const std::string response = exchange(gateway.port(), get_request(server.port(), "/a/b?c=1"));
    CHECK_THAT(response, StartsWith("HTTP/1.1 200 OK\r\n"));
    CHECK(response.ends_with("\r\n\r\nhello"));
    const std::string head = received.head(0);
    CHECK_THAT(head, StartsWith("GET /a/b?c=1 HTTP/1.1\r\n"));
    CHECK_THAT(head, Contains("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
    CHECK_THAT(head, Contains("\r\nConnection: close\r\n"));
    CHECK_THAT(head, Contains("\r\nUser-Agent: test\r\n"));
    CHECK_THAT(head, !Contains("Proxy-Connection") && !Contains("keep-alive"));

    const GatewayUsage usage = gateway.usage();
    REQUIRE(usage.attempts.size() == 1);
    CHECK(usage.attempts[0].host == "127.0.0.1");
    CHECK(usage.attempts[0].port == server.port());
    CHECK(usage.attempts[0].protocol == Protocol::http);
    CHECK(usage.attempts[0].allowed);
    CHECK(usage.attempts[0].phase == "provision");
    CHECK(usage.bytes_down == response.size());
    CHECK(usage.bytes_up == 0);

    // A body sent with the head is relayed and counted as bytes up.
    const std::string post = "POST http://127.0.0.1:" + std::to_string(server.port()) +
                             "/up HTTP/1.1\r\nContent-Length: 4\r\n\r\nping";
    CHECK_THAT(exchange(gateway.port(), post), StartsWith("HTTP/1.1 200 OK\r\n"));
    CHECK(received.head(1).ends_with("\r\n\r\nping"));
    CHECK(gateway.usage().bytes_up == 4);
}

TEST_CASE("a destination outside the allowlist gets 403 and is recorded as blocked", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "secret"));
    Gateway gateway(allow(server.port(), Protocol::http), "build");

    const std::string denied = exchange(gateway.port(), "GET http://blocked.example/x HTTP/1.1\r\n"
                                                        "Host: blocked.example\r\n\r\n");
    CHECK_THAT(denied, StartsWith("HTTP/1.1 403 Forbidden\r\n"));
    CHECK_THAT(denied, Contains("blocked.example:80") && Contains("not in the build allowlist"));

    // The allowed port, but over CONNECT, which the http rule does not cover.
    const std::string tunnel =
        "CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1\r\n\r\n";
    CHECK_THAT(exchange(gateway.port(), tunnel), StartsWith("HTTP/1.1 403 Forbidden\r\n"));
    CHECK(server.connections() == 0);

    const GatewayUsage usage = gateway.usage();
    REQUIRE(usage.attempts.size() == 2);
    CHECK(usage.attempts[0].host == "blocked.example");
    CHECK(usage.attempts[0].port == 80);
    CHECK_FALSE(usage.attempts[0].allowed);
    CHECK(usage.attempts[1].protocol == Protocol::https);
    CHECK_FALSE(usage.attempts[1].allowed);
    CHECK(usage.bytes_down == 0);
}

TEST_CASE("requests the gateway cannot serve get 400 or 502", "[gateway]") {
    const std::uint16_t closed_port = unused_port();
    Gateway gateway(allow(closed_port, Protocol::http), "provision");
    CHECK_THAT(exchange(gateway.port(), "hello\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
    CHECK_THAT(exchange(gateway.port(), "GET /x HTTP/1.1\r\n\r\n"),
               StartsWith("HTTP/1.1 400 ") && Contains("Host header"));
    CHECK(gateway.usage().attempts.empty());

    const std::string failed = exchange(gateway.port(), get_request(closed_port, "/"));
    CHECK_THAT(failed, StartsWith("HTTP/1.1 502 Bad Gateway\r\n") && Contains("cannot reach"));
    REQUIRE(gateway.usage().attempts.size() == 1);
    CHECK(gateway.usage().attempts[0].allowed);
}

TEST_CASE("CONNECT to an allowed port relays raw bytes both ways", "[gateway]") {
    LoopbackServer server([](int fd) {
        send_text(fd, "greeting\n");
        send_text(fd, read_bytes(fd)); // echo everything once the client has finished
    });
    Gateway gateway(allow(server.port(), Protocol::https), "provision");
    const Fd client = connect_to(gateway.port());
    send_text(client.get(), "CONNECT 127.0.0.1:" + std::to_string(server.port()) +
                                " HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_head(client.get()) == "HTTP/1.1 200 Connection established\r\n\r\n");
    CHECK(read_bytes(client.get(), 9) == "greeting\n");

    std::string payload(300000, '\0'); // every byte value, in a pattern that shows reordering
    std::generate(payload.begin(), payload.end(), [i = 0]() mutable { return char(i++ * 7); });
    send_text(client.get(), payload);
    ::shutdown(client.get(), SHUT_WR);
    CHECK(read_bytes(client.get()) == payload);

    const GatewayUsage usage = gateway.usage();
    CHECK(usage.bytes_up == payload.size());
    CHECK(usage.bytes_down == payload.size() + 9);
}

TEST_CASE("with an upstream proxy the gateway sends absolute-form requests and CONNECT there",
          "[gateway]") {
    Received received;
    LoopbackServer upstream([&received](int fd) {
        const std::string head = read_head(fd);
        received.add(head);
        if (head.starts_with("CONNECT refused.test:")) {
            send_text(fd, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        } else if (head.starts_with("CONNECT ")) {
            send_text(fd, "HTTP/1.1 200 OK\r\n\r\n");
            send_text(fd, read_bytes(fd));
        } else {
            send_text(fd, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ncached!");
        }
    });
    GatewayOptions options;
    options.upstream_proxy = "http://127.0.0.1:" + std::to_string(upstream.port());
    auto rules = allow(80, Protocol::http, "origin.test");
    rules.push_back({{"*.test", 443, Protocol::https}, policy::Origin::config});
    Gateway gateway(rules, "provision", options);

    const std::string response = exchange(
        gateway.port(), "GET http://origin.test/pool/a.deb HTTP/1.1\r\nHost: origin.test\r\n\r\n");
    CHECK(response.ends_with("cached!"));
    CHECK_THAT(received.head(0), StartsWith("GET http://origin.test/pool/a.deb HTTP/1.1\r\n"));
    CHECK_THAT(received.head(0), Contains("\r\nConnection: close\r\n"));

    const Fd client = connect_to(gateway.port());
    send_text(client.get(), "CONNECT origin.test:443 HTTP/1.1\r\n\r\n");
    CHECK(read_head(client.get()) == "HTTP/1.1 200 Connection established\r\n\r\n");
    send_text(client.get(), "tls bytes");
    ::shutdown(client.get(), SHUT_WR);
    CHECK(read_bytes(client.get()) == "tls bytes");
    CHECK_THAT(received.head(1), StartsWith("CONNECT origin.test:443 HTTP/1.1\r\n"));

    CHECK_THAT(exchange(gateway.port(), "CONNECT refused.test:443 HTTP/1.1\r\n\r\n"),
               StartsWith("HTTP/1.1 502 ") && Contains("refused CONNECT"));

    GatewayOptions bad;
    bad.upstream_proxy = "ftp://127.0.0.1:3128";
    CHECK_THROWS_AS(Gateway({}, "provision", bad), UsageError);
}

TEST_CASE("rule_allows matches wildcards, ports and protocols", "[gateway]") {
    const policy::NetworkRule wildcard{"*.example.org", 443, Protocol::https};
    CHECK(rule_allows(wildcard, "deb.example.org", 443, Protocol::https));
    CHECK(rule_allows(wildcard, "a.b.example.org", 443, Protocol::https));
    CHECK(rule_allows(wildcard, "DEB.Example.ORG", 443, Protocol::https));
    CHECK_FALSE(rule_allows(wildcard, "example.org", 443, Protocol::https));
    CHECK_FALSE(rule_allows(wildcard, "badexample.org", 443, Protocol::https));
    CHECK_FALSE(rule_allows(wildcard, "deb.example.org", 80, Protocol::https));
    CHECK_FALSE(rule_allows(wildcard, "deb.example.org", 443, Protocol::http));

    const policy::NetworkRule name{"deb.debian.org", 80, Protocol::http};
    CHECK(rule_allows(name, "deb.debian.org", 80, Protocol::http));
    CHECK(rule_allows(name, "Deb.Debian.Org", 80, Protocol::http));
    CHECK_FALSE(rule_allows(name, "deb.debian.org.evil", 80, Protocol::http));
    CHECK_FALSE(rule_allows(name, "x.deb.debian.org", 80, Protocol::http));

    const policy::NetworkRule ipv4{"127.0.0.1", 8080, Protocol::tcp};
    CHECK(rule_allows(ipv4, "127.0.0.1", 8080, Protocol::tcp));
    CHECK_FALSE(rule_allows(ipv4, "127.0.0.10", 8080, Protocol::tcp));
    CHECK_FALSE(rule_allows(ipv4, "127.0.0.1", 8080, Protocol::https));

    const policy::NetworkRule ipv6{"::1", 443, Protocol::https};
    CHECK(rule_allows(ipv6, "0:0:0:0:0:0:0:1", 443, Protocol::https));
    CHECK_FALSE(rule_allows(ipv6, "::2", 443, Protocol::https));
}

TEST_CASE("set_rules switches the allowlist for new requests", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "ok"));
    Gateway gateway(allow(server.port(), Protocol::http), "provision");
    CHECK_THAT(exchange(gateway.port(), get_request(server.port(), "/")),
               StartsWith("HTTP/1.1 200 "));

    gateway.set_rules({}, "build");
    CHECK_THAT(exchange(gateway.port(), get_request(server.port(), "/")),
               StartsWith("HTTP/1.1 403 ") && Contains("not in the build allowlist"));

    const GatewayUsage usage = gateway.usage();
    REQUIRE(usage.attempts.size() == 2);
    CHECK(usage.attempts[0].allowed);
    CHECK(usage.attempts[0].phase == "provision");
    CHECK_FALSE(usage.attempts[1].allowed);
    CHECK(usage.attempts[1].phase == "build");
    CHECK(server.connections() == 1);
}

TEST_CASE("the destructor ends open connections promptly", "[gateway]") {
    LoopbackServer server([](int fd) { read_bytes(fd); });
    auto gateway = std::make_unique<Gateway>(allow(server.port(), Protocol::https), "build");
    const Fd tunnel = connect_to(gateway->port());
    send_text(tunnel.get(),
              "CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1\r\n\r\n");
    REQUIRE(read_head(tunnel.get()) == "HTTP/1.1 200 Connection established\r\n\r\n");
    const Fd silent = connect_to(gateway->port()); // never sends a request head

    const auto start = std::chrono::steady_clock::now();
    gateway.reset();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    CHECK(read_bytes(tunnel.get()).empty()); // closed, not timed out after 5 s
    CHECK(read_bytes(silent.get()).empty());
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(4));
}

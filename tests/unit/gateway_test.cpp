// Tests for gateway/gateway.hpp, the allowlisting proxy, with servers started on 127.0.0.1.
#include "gateway/gateway.hpp"
#include "gateway/socket.hpp"
#include "gateway/token_bucket.hpp"
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

// One rule. Test servers listen on 127.0.0.1, which the gateway reaches only when the user's
// config names it: hence Origin::config unless a test says otherwise.
std::vector<policy::EffectiveRule> allow(std::uint16_t port, Protocol protocol,
                                         std::string host = "127.0.0.1",
                                         policy::Origin origin = policy::Origin::config) {
    return {{{std::move(host), port, protocol}, origin}};
}

// A policy with `rules` while provisioning and `build_rules` while building.
policy::EffectivePolicy phases(std::vector<policy::EffectiveRule> rules,
                               std::vector<policy::EffectiveRule> build_rules = {}) {
    return {std::move(rules), std::move(build_rules)};
}

// The tally of the attempts on `host`:`port` that were allowed (or refused), or nullptr.
const AttemptTally* tally_of(const GatewayUsage& usage, std::string_view host, std::uint16_t port,
                             Protocol protocol, bool allowed = true) {
    for (const auto& tally : usage.attempts) {
        if (tally.attempt.host == host && tally.attempt.port == port &&
            tally.attempt.protocol == protocol && tally.attempt.allowed == allowed) {
            return &tally;
        }
    }
    return nullptr;
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
    Gateway gateway(phases(allow(server.port(), Protocol::http)), {});

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
    CHECK(usage.attempts[0].attempt.host == "127.0.0.1");
    CHECK(usage.attempts[0].attempt.port == server.port());
    CHECK(usage.attempts[0].attempt.protocol == Protocol::http);
    CHECK(usage.attempts[0].attempt.allowed);
    CHECK(usage.attempts[0].attempt.phase == "provision");
    CHECK(usage.attempts[0].count == 1);
    CHECK(usage.attempts[0].bytes_down == response.size());
    CHECK(usage.allowed == 1);
    CHECK(usage.blocked == 0);
    CHECK(usage.bytes_down == response.size());
    CHECK(usage.bytes_up == 0);

    // A body sent with the head is relayed and counted as bytes up; a second request
    // pipelined after it goes nowhere (one request per connection).
    const std::string post = "POST http://127.0.0.1:" + std::to_string(server.port()) +
                             "/up HTTP/1.1\r\nContent-Length: 4\r\n\r\nping"
                             "GET http://127.0.0.1:" +
                             std::to_string(server.port()) + "/second HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_THAT(exchange(gateway.port(), post), StartsWith("HTTP/1.1 200 OK\r\n"));
    CHECK(received.head(1).ends_with("\r\n\r\nping"));
    CHECK(gateway.usage().bytes_up == 4);
    CHECK(server.connections() == 2);
    CHECK(received.head(2).empty());
}

TEST_CASE("a destination outside the allowlist gets 403 and is recorded as blocked", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "secret"));
    std::vector<Attempt> refused;
    std::mutex refused_mutex;
    GatewayOptions options;
    options.on_refused = [&](const Attempt& attempt) {
        const std::lock_guard lock(refused_mutex);
        refused.push_back(attempt);
    };
    Gateway gateway(phases({}, allow(server.port(), Protocol::http)), options);
    gateway.begin_phase(policy::Phase::build);

    const std::string denied = exchange(gateway.port(), "GET http://blocked.example/x HTTP/1.1\r\n"
                                                        "Host: blocked.example\r\n\r\n");
    CHECK_THAT(denied, StartsWith("HTTP/1.1 403 Forbidden\r\n"));
    CHECK_THAT(denied, Contains("blocked.example:80") && Contains("not in the build allowlist"));

    // The allowed port, but over CONNECT, which the http rule does not cover.
    const std::string tunnel =
        "CONNECT 127.0.0.1:" + std::to_string(server.port()) + " HTTP/1.1\r\n\r\n";
    CHECK_THAT(exchange(gateway.port(), tunnel), StartsWith("HTTP/1.1 403 Forbidden\r\n"));
    CHECK_THAT(exchange(gateway.port(), tunnel), StartsWith("HTTP/1.1 403 Forbidden\r\n"));
    CHECK(server.connections() == 0);

    const GatewayUsage usage = gateway.usage();
    REQUIRE(usage.attempts.size() == 2);
    const AttemptTally* blocked = tally_of(usage, "blocked.example", 80, Protocol::http, false);
    REQUIRE(blocked != nullptr);
    CHECK_FALSE(blocked->attempt.allowed);
    CHECK(blocked->attempt.refusal == "not in the build allowlist");
    const AttemptTally* connect =
        tally_of(usage, "127.0.0.1", server.port(), Protocol::https, false);
    REQUIRE(connect != nullptr);
    CHECK(connect->count == 2);
    CHECK(usage.blocked == 3);
    CHECK(usage.bytes_down == 0);
    const std::lock_guard lock(refused_mutex);
    REQUIRE(refused.size() == 3);
    CHECK(refused[0].host == "blocked.example");
    CHECK(refused[0].phase == "build");
}

TEST_CASE("internal addresses are refused unless the user's config names them", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "host secret"));
    const auto port = server.port();
    // Rules from a spec: the loopback by address, by name, in another spelling.
    std::vector<policy::EffectiveRule> rules;
    for (const std::string host : {"127.0.0.1", "localhost", "::ffff:127.0.0.1"}) {
        rules.push_back({{host, port, Protocol::http}, policy::Origin::spec});
    }
    Gateway gateway(phases(rules), {});
    for (const std::string host : {"127.0.0.1", "localhost", "[::ffff:127.0.0.1]"}) {
        const std::string answer =
            exchange(gateway.port(), "GET http://" + host + ":" + std::to_string(port) +
                                         "/ HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK_THAT(answer, StartsWith("HTTP/1.1 403 ") && Contains("loopback") &&
                               Contains("only the user's config can allow"));
    }
    CHECK(server.connections() == 0);
    CHECK(gateway.usage().blocked == 3);

    // host.contractor.internal is contractor's own mapping: it reaches the address it is
    // mapped to (the server on this loopback), and nothing when it is mapped nowhere.
    GatewayOptions options;
    options.contractor_host_address = "127.0.0.1";
    Gateway mapped(phases(allow(port, Protocol::http, "host.contractor.internal")), options);
    CHECK(exchange(mapped.port(), "GET http://host.contractor.internal:" + std::to_string(port) +
                                      "/ HTTP/1.1\r\nHost: x\r\n\r\n")
              .ends_with("host secret"));
    CHECK(server.connections() == 1);
    Gateway unmapped(phases(allow(port, Protocol::http, "host.contractor.internal")), {});
    CHECK_THAT(exchange(unmapped.port(), "GET http://host.contractor.internal:" +
                                             std::to_string(port) + "/ HTTP/1.1\r\n\r\n"),
               StartsWith("HTTP/1.1 502 ") && Contains("leads nowhere"));
}

TEST_CASE("requests the gateway cannot serve get 400 or 502", "[gateway]") {
    const std::uint16_t closed_port = unused_port();
    Gateway gateway(phases(allow(closed_port, Protocol::http)), {});
    CHECK_THAT(exchange(gateway.port(), "hello\r\n\r\n"), StartsWith("HTTP/1.1 400 "));
    CHECK_THAT(exchange(gateway.port(), "GET /x HTTP/1.1\r\n\r\n"),
               StartsWith("HTTP/1.1 400 ") && Contains("Host header"));
    CHECK(gateway.usage().attempts.empty());

    const std::string failed = exchange(gateway.port(), get_request(closed_port, "/"));
    CHECK_THAT(failed, StartsWith("HTTP/1.1 502 Bad Gateway\r\n") && Contains("cannot reach"));
    REQUIRE(gateway.usage().attempts.size() == 1);
    CHECK(gateway.usage().attempts[0].attempt.allowed);
}

TEST_CASE("CONNECT to an allowed port relays raw bytes both ways", "[gateway]") {
    LoopbackServer server([](int fd) {
        send_text(fd, "greeting\n");
        send_text(fd, read_bytes(fd)); // echo everything once the client has finished
    });
    Gateway gateway(phases(allow(server.port(), Protocol::https)), {});
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
    REQUIRE(usage.attempts.size() == 1);
    CHECK(usage.attempts[0].bytes_up == payload.size());
    CHECK(usage.attempts[0].bytes_down == payload.size() + 9);
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
    auto rules = allow(80, Protocol::http, "origin.test", policy::Origin::spec);
    rules.push_back({{"*.test", 443, Protocol::https}, policy::Origin::config});
    rules.push_back({{"localhost", 443, Protocol::https}, policy::Origin::spec});
    Gateway gateway(phases(rules), options);

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
    // A name that resolves to an internal address is refused before the proxy sees it: the
    // proxy would reach its own loopback.
    CHECK_THAT(exchange(gateway.port(), "CONNECT localhost:443 HTTP/1.1\r\n\r\n"),
               StartsWith("HTTP/1.1 403 ") && Contains("loopback"));
    CHECK(received.head(3).empty());

    GatewayOptions bad;
    bad.upstream_proxy = "ftp://127.0.0.1:3128";
    CHECK_THROWS_AS(Gateway({}, bad), UsageError);
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

TEST_CASE("begin_phase switches the allowlist and closes every open connection", "[gateway]") {
    Received received;
    LoopbackServer server(http_server(received, "ok"));
    LoopbackServer held([](int fd) { read_bytes(fd); }); // holds its tunnel open
    auto rules = allow(server.port(), Protocol::http);
    rules.push_back(allow(held.port(), Protocol::https)[0]);
    Gateway gateway(phases(rules), {});
    CHECK_THAT(exchange(gateway.port(), get_request(server.port(), "/")),
               StartsWith("HTTP/1.1 200 "));
    const Fd tunnel = connect_to(gateway.port());
    send_text(tunnel.get(),
              "CONNECT 127.0.0.1:" + std::to_string(held.port()) + " HTTP/1.1\r\n\r\n");
    REQUIRE(read_head(tunnel.get()) == "HTTP/1.1 200 Connection established\r\n\r\n");

    const auto start = std::chrono::steady_clock::now();
    gateway.begin_phase(policy::Phase::build);
    CHECK(read_bytes(tunnel.get()).empty()); // closed by the gateway, not timed out after 5 s
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
    CHECK_THAT(exchange(gateway.port(), get_request(server.port(), "/")),
               StartsWith("HTTP/1.1 403 ") && Contains("not in the build allowlist"));

    const GatewayUsage usage = gateway.usage();
    const AttemptTally* first = tally_of(usage, "127.0.0.1", server.port(), Protocol::http);
    REQUIRE(first != nullptr);
    CHECK(usage.attempts.size() == 3);
    CHECK(usage.allowed == 2);
    CHECK(usage.blocked == 1);
    CHECK(server.connections() == 1);
}

TEST_CASE("a tcp rule's endpoint relays to its host:port in its phase only", "[gateway]") {
    LoopbackServer echo([](int fd) { send_text(fd, read_bytes(fd)); });
    GatewayOptions options;
    options.contractor_host_address = "127.0.0.1";
    Gateway gateway(phases(allow(echo.port(), Protocol::tcp, "host.contractor.internal")), options);
    REQUIRE(gateway.tcp_endpoints().size() == 1);
    const TcpEndpoint endpoint = gateway.tcp_endpoints()[0];
    CHECK(endpoint.host == "host.contractor.internal");
    CHECK(endpoint.port == echo.port());
    CHECK(endpoint.worker_address == "127.77.0.1");
    CHECK(endpoint.phase == policy::Phase::provision);
    {
        const Fd client = connect_to(endpoint.local_port);
        send_text(client.get(), "raw bytes");
        ::shutdown(client.get(), SHUT_WR);
        CHECK(read_bytes(client.get()) == "raw bytes");
    }
    gateway.begin_phase(policy::Phase::build);
    {
        const Fd client = connect_to(endpoint.local_port);
        send_text(client.get(), "again");
        CHECK(read_bytes(client.get()).empty());
    }
    CHECK(echo.connections() == 1);
    const GatewayUsage usage = gateway.usage();
    const AttemptTally* tcp =
        tally_of(usage, "host.contractor.internal", echo.port(), Protocol::tcp);
    REQUIRE(tcp != nullptr);
    CHECK(tcp->bytes_up == 9);
    CHECK(tcp->bytes_down == 9);
    CHECK(usage.blocked == 1);
}

TEST_CASE("network-transfer cuts the connection; network-rate paces it", "[gateway]") {
    const std::string body(1 << 20, 'x');
    Received received;
    LoopbackServer server(http_server(received, body));
    std::atomic<std::uint64_t> charged{0};
    GatewayOptions options;
    options.charge_transfer = [&charged](std::uint64_t bytes) {
        return charged.fetch_add(bytes) + bytes <= 256 * 1024;
    };
    Gateway limited(phases(allow(server.port(), Protocol::http)), options);
    const std::string cut = exchange(limited.port(), get_request(server.port(), "/"));
    CHECK(cut.size() < 300 * 1024);
    CHECK(limited.usage().bytes_down <= 256 * 1024);

    GatewayOptions paced;
    paced.rate = 512 * 1024;
    Gateway slow(phases(allow(server.port(), Protocol::http)), paced);
    const auto start = std::chrono::steady_clock::now();
    CHECK(exchange(slow.port(), get_request(server.port(), "/")).ends_with(body));
    // 1 MiB at 512 KiB/s, less the first burst (a tenth of a second's worth): at least 1.8 s.
    CHECK(std::chrono::steady_clock::now() - start > std::chrono::milliseconds(1800));
}

TEST_CASE("the DNS responder answers allowed names only and records every question", "[gateway]") {
    auto rules = allow(80, Protocol::http, "deb.debian.org", policy::Origin::builtin);
    rules.push_back({{"*.pythonhosted.org", 443, Protocol::https}, policy::Origin::spec});
    rules.push_back({{"git.example.org", 22, Protocol::tcp}, policy::Origin::spec});
    Gateway gateway(phases(rules), {});
    const auto ask = [&gateway](const std::string& name) {
        std::string query = {'\x12', '\x34', '\x01', '\0', '\0', '\x01',
                             '\0',   '\0',   '\0',   '\0', '\0', '\0'};
        std::size_t from = 0;
        while (from <= name.size()) {
            const auto dot = std::min(name.find('.', from), name.size());
            query += static_cast<char>(dot - from);
            query += name.substr(from, dot - from);
            from = dot + 1;
        }
        query += std::string("\0\0\x01\0\x01", 5);
        const Fd client = connect_to(gateway.dns_port());
        const std::string framed = std::string{static_cast<char>(query.size() >> 8),
                                               static_cast<char>(query.size() & 0xff)} +
                                   query;
        send_text(client.get(), framed);
        const std::string length = read_bytes(client.get(), 2);
        REQUIRE(length.size() == 2);
        return read_bytes(client.get(), (static_cast<unsigned char>(length[0]) << 8) |
                                            static_cast<unsigned char>(length[1]));
    };
    const std::string hit = ask("deb.debian.org");
    CHECK((static_cast<unsigned char>(hit[3]) & 0x0f) == 0); // NOERROR
    CHECK(hit.ends_with(std::string("\x7f\0\0\x01", 4)));
    CHECK(ask("files.pythonhosted.org").ends_with(std::string("\x7f\0\0\x01", 4)));
    CHECK(ask("git.example.org").ends_with(std::string("\x7f\x4d\0\x01", 4)));
    const std::string miss = ask("exfiltrate.attacker.example");
    CHECK((static_cast<unsigned char>(miss[3]) & 0x0f) == 3); // NXDOMAIN

    const GatewayUsage usage = gateway.usage();
    REQUIRE(usage.names.size() == 4);
    const auto found =
        std::find_if(usage.names.begin(), usage.names.end(), [](const NameTally& name) {
            return name.name == "exfiltrate.attacker.example";
        });
    REQUIRE(found != usage.names.end());
    CHECK_FALSE(found->answered);
    CHECK(found->phase == "provision");
}

TEST_CASE("the attempts listed are bounded; every attempt is still counted", "[gateway]") {
    Gateway gateway(phases({}), {});
    for (int i = 0; i < 300; ++i) {
        exchange(gateway.port(),
                 "GET http://h" + std::to_string(i) + ".example/ HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    const GatewayUsage usage = gateway.usage();
    CHECK(usage.attempts.size() == max_listed_attempts);
    CHECK(usage.attempts_not_listed == 300 - max_listed_attempts);
    CHECK(usage.blocked == 300);
}

TEST_CASE("the token bucket grants a burst, then the rate", "[gateway]") {
    TokenBucket unpaced(0);
    CHECK(unpaced.grant(65536).bytes == 65536);
    TokenBucket bucket(1 << 20); // burst: a tenth of a second, 104857 bytes
    const Grant first = bucket.grant(1 << 20);
    CHECK(first.bytes == 104857);
    // Overdrawn by half a second's worth: however slowly this test runs (ASan), the bucket
    // cannot refill that before the next grant.
    bucket.spend(first.bytes + (1 << 19));
    const Grant empty = bucket.grant(65536);
    CHECK(empty.bytes == 0);
    CHECK(empty.retry_at > std::chrono::steady_clock::now() + std::chrono::milliseconds(100));
    CHECK(empty.retry_at < std::chrono::steady_clock::now() + std::chrono::milliseconds(600));
}

TEST_CASE("the destructor ends open connections promptly", "[gateway]") {
    LoopbackServer server([](int fd) { read_bytes(fd); });
    auto gateway =
        std::make_unique<Gateway>(phases(allow(server.port(), Protocol::https)), GatewayOptions{});
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

// Tests for gateway/http_head.hpp's request parsing (body framing, the refusals that stop
// request smuggling) and gateway/request_body.hpp, over a real socketpair.
#include "gateway/http_head.hpp"
#include "gateway/request_body.hpp"
#include "gateway/socket.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <vector>

using namespace contractor::gateway;
using namespace std::string_literals;
using Catch::Matchers::Contains;
using Kind = BodyFraming::Kind;

namespace {

// The idle timeout where a test expects the client to keep sending: long enough never to
// fire on a loaded machine, so that a test that hangs fails on the CTest timeout instead.
constexpr std::chrono::milliseconds patient(5000);
// The idle timeout where a test expects the client to stop: short, to keep the suite fast.
constexpr std::chrono::milliseconds impatient(100);

ProxyRequest parsed(const std::string& head) {
    auto result = parse_request_head(head);
    if (const auto* bad = std::get_if<BadRequest>(&result)) {
        FAIL("refused: " << bad->reason);
    }
    return std::get<ProxyRequest>(result);
}

// The reason a head is refused for, or "accepted".
std::string refusal(const std::string& head) {
    const auto result = parse_request_head(head);
    const auto* bad = std::get_if<BadRequest>(&result);
    return bad != nullptr ? bad->reason : "accepted";
}

std::string post(const std::string& headers) {
    return "POST http://example.org/up HTTP/1.1\r\nHost: example.org\r\n" + headers + "\r\n";
}

// Two connected sockets: `gateway` (non-blocking, as the gateway's are) and `client`.
struct SocketPair {
    Fd gateway;
    Fd client;
};

SocketPair socket_pair() {
    int fds[2] = {-1, -1};
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    SocketPair pair{Fd(fds[0]), Fd(fds[1])};
    set_nonblocking(pair.gateway.get());
    return pair;
}

void client_sends(const SocketPair& pair, std::string_view bytes) {
    REQUIRE(::send(pair.client.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
            static_cast<ssize_t>(bytes.size()));
}

// A send_up that records every call.
struct Upstream {
    std::vector<std::string> sends;
    std::string all() const {
        std::string out;
        for (const auto& sent : sends) {
            out += sent;
        }
        return out;
    }
};

std::function<bool(std::string_view)> recorder(Upstream& upstream) {
    return [&upstream](std::string_view bytes) {
        upstream.sends.emplace_back(bytes);
        return true;
    };
}

} // namespace

TEST_CASE("the body framing of GET, POST and chunked requests", "[http-request]") {
    const ProxyRequest get =
        parsed("GET http://example.org/ HTTP/1.1\r\nHost: example.org\r\n\r\n");
    CHECK(get.body.kind == Kind::none);
    CHECK(get.body.length == 0);

    const ProxyRequest upload = parsed(post("Content-Length: 12345678901\r\n"));
    CHECK(upload.body.kind == Kind::length);
    CHECK(upload.body.length == 12345678901u);
    CHECK(upload.method == "POST");
    CHECK(upload.destination.host == "example.org");
    CHECK(upload.path == "/up");

    CHECK(parsed(post("Content-Length: 0\r\n")).body.kind == Kind::length);
    CHECK(parsed(post("Transfer-Encoding: chunked\r\n")).body.kind == Kind::chunked);
    CHECK(parsed(post("transfer-encoding:  CHUNKED \r\n")).body.kind == Kind::chunked);

    // A tab inside a header value is allowed, and kept.
    const ProxyRequest tabbed = parsed(post("X-Note: a\tb\r\n"));
    REQUIRE(tabbed.headers.size() == 2);
    CHECK(tabbed.headers[1].name == "X-Note");
    CHECK(tabbed.headers[1].value == "a\tb");

    // CONNECT has no body; an explicit `Content-Length: 0` is tolerated.
    const ProxyRequest tunnel =
        parsed("CONNECT Example.ORG:443 HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(tunnel.body.kind == Kind::none);
    CHECK(tunnel.destination.host == "example.org");
    CHECK(tunnel.destination.port == 443);
}

TEST_CASE("the parser keeps its contract: forms, IPv6, versions", "[http-request]") {
    const ProxyRequest origin = parsed("GET /a?b HTTP/1.0\r\nHost: [::1]:8080\r\n\r\n");
    CHECK(origin.protocol == contractor::policy::Protocol::http);
    CHECK(origin.destination.host == "::1");
    CHECK(origin.destination.port == 8080);
    CHECK(origin.path == "/a?b");
    CHECK(origin.version == "HTTP/1.0");

    CHECK(refusal("GET /x HTTP/1.1\r\n\r\n") == "a request for a path needs a Host header");
    CHECK(refusal("hello\r\n\r\n") == "malformed request line");
    CHECK(refusal("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == "malformed request line");
    CHECK(refusal("GET http://a/ HTTP/1.1\r\nBad Name: x\r\n\r\n") == "malformed header line");
    CHECK(refusal("GET http://a/ HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") ==
          "more than one Host header");
    CHECK(refusal("GET http://a/ HTTP/1.1\r\n\r\nGET http://b/ HTTP/1.1\r\n\r\n") ==
          "bytes after the end of the request head");
    CHECK(refusal("GET http://a/ HTTP/1.1\r\nHost: a\r\n") == "incomplete request head");
    CHECK(refusal("") == "empty request");
}

TEST_CASE("heads whose body framing is ambiguous are refused", "[http-request]") {
    // The classic smuggling pair: a next hop that trusts the length would read the end of the
    // chunked body as the start of another request.
    CHECK(refusal(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n")) ==
          "both Content-Length and Transfer-Encoding: where the body ends would be ambiguous");
    CHECK(refusal(post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n")) ==
          "both Content-Length and Transfer-Encoding: where the body ends would be ambiguous");
    CHECK(refusal(post("Content-Length: 5\r\nContent-Length: 5\r\n")) ==
          "more than one Content-Length header");
    CHECK(refusal(post("Content-Length: 5\r\nContent-Length: 6\r\n")) ==
          "more than one Content-Length header");
    CHECK(refusal(post("Content-Length: 5, 5\r\n")) ==
          "Content-Length is not a decimal number: '5, 5'");
    CHECK(refusal(post("Content-Length: -1\r\n")) ==
          "Content-Length is not a decimal number: '-1'");
    CHECK(refusal(post("Content-Length: 0x10\r\n")) ==
          "Content-Length is not a decimal number: '0x10'");
    CHECK(refusal(post("Content-Length: 18446744073709551616\r\n")) ==
          "Content-Length too large: '18446744073709551616'");
    CHECK(refusal(post("Transfer-Encoding: chunked, identity\r\n")) ==
          "Transfer-Encoding must be exactly 'chunked', not 'chunked, identity'");
    CHECK(refusal(post("Transfer-Encoding: gzip, chunked\r\n")) ==
          "Transfer-Encoding must be exactly 'chunked', not 'gzip, chunked'");
    CHECK(refusal(post("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n")) ==
          "more than one Transfer-Encoding header");
    CHECK(refusal("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          "Transfer-Encoding in an HTTP/1.0 request");
    CHECK(refusal("CONNECT a:443 HTTP/1.1\r\nContent-Length: 4\r\n\r\n") ==
          "a CONNECT request cannot have a body");
    CHECK(refusal("CONNECT a:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          "a CONNECT request cannot have a body");
}

TEST_CASE("control characters and obs-fold in a head are refused", "[http-request]") {
    CHECK(refusal(post("X-A: one\rTwo: x\r\n")) == "control character 0x0D in a header line");
    CHECK(refusal(post("X-A: a\x01z\r\n")) == "control character 0x01 in a header line");
    CHECK(refusal(post("X-A: a"s + '\0' + "z\r\n")) == "control character 0x00 in a header line");
    CHECK(refusal(post("X-A: a\x7fz\r\n")) == "control character 0x7F in a header line");
    CHECK(refusal("GET http://a/x"s + '\0' + "y HTTP/1.1\r\n\r\n") ==
          "control character 0x00 in the request line");
    CHECK(refusal("GET\thttp://a/ HTTP/1.1\r\n\r\n") ==
          "control character 0x09 in the request line");
    CHECK(refusal(post("X-A: a\nContent-Length: 5\r\n")) ==
          "a bare LF in a header line; lines must end with CR LF");
    CHECK(refusal("GET http://a/ HTTP/1.1\nHost: a\n\n") ==
          "a bare LF in the request line; lines must end with CR LF");
    CHECK(refusal(post("X-A: a\r\n Content-Length: 5\r\n")) ==
          "obsolete line folding (a header line starting with a space or tab)");
    CHECK(refusal(post("X-A: a\r\n\tb\r\n")) ==
          "obsolete line folding (a header line starting with a space or tab)");
}

TEST_CASE("upstream heads keep the one framing header and drop Trailer", "[http-request]") {
    const std::string head = upstream_request_head(
        parsed(post("Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n")), false);
    CHECK(head == "POST /up HTTP/1.1\r\nHost: example.org\r\nTransfer-Encoding: chunked\r\n"
                  "Connection: close\r\n\r\n");
}

TEST_CASE("a Content-Length body is forwarded and a pipelined request is not", "[http-request]") {
    const SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    Upstream upstream;
    client_sends(pair, "lo world");
    client_sends(pair, "GET http://other.example/ HTTP/1.1\r\nHost: other.example\r\n\r\n");

    const BodyForwarded result = forward_request_body(pair.gateway.get(), {Kind::length, 11}, "hel",
                                                      recorder(upstream), stop.get(), patient);
    CHECK(result.ok);
    CHECK(result.error.empty());
    CHECK(upstream.all() == "hello world");
    REQUIRE(upstream.sends.size() == 2);
    CHECK(upstream.sends[0] == "hel");

    // The whole body and more already arrived with the head: only the body goes on.
    Upstream second;
    CHECK(forward_request_body(pair.gateway.get(), {Kind::length, 4},
                               "pingPOST http://evil/ HTTP/1.1\r\n\r\n", recorder(second),
                               stop.get(), patient)
              .ok);
    CHECK(second.all() == "ping");

    // No body: nothing is sent, whatever followed the head.
    Upstream third;
    CHECK(forward_request_body(pair.gateway.get(), {}, "GET http://evil/ HTTP/1.1\r\n\r\n",
                               recorder(third), stop.get(), patient)
              .ok);
    CHECK(third.sends.empty());
}

TEST_CASE("a chunked body split across reads is re-chunked, trailers and extra bytes dropped",
          "[http-request]") {
    const SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    // Each piece reaches the socket only once the gateway has sent on what came before it, so
    // every read sees exactly one piece.
    std::vector<std::string> pieces = {
        "lo\r\n3;ext=1\r\nab",
        "c\r\n0\r\nX-Sum: 1\r\n\r\nGET http://smuggled.example/ HTTP/1.1\r\n\r\n",
    };
    std::string sent;
    std::size_t next_piece = 0;
    const auto send_up = [&](std::string_view bytes) {
        sent += bytes;
        if (next_piece < pieces.size()) {
            client_sends(pair, pieces[next_piece++]);
        }
        return true;
    };

    const BodyForwarded result = forward_request_body(pair.gateway.get(), {Kind::chunked, 0},
                                                      "5\r\nhel", send_up, stop.get(), patient);
    CHECK(result.ok);
    CHECK(result.error.empty());
    CHECK(sent == "3\r\nhel\r\n2\r\nlo\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n");
    CHECK(next_piece == 2);
}

TEST_CASE("a chunked body is refused when malformed or too large", "[http-request]") {
    const SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    Upstream upstream;
    const BodyForwarded bad =
        forward_request_body(pair.gateway.get(), {Kind::chunked, 0}, "zz\r\nhello\r\n0\r\n\r\n",
                             recorder(upstream), stop.get(), patient);
    CHECK_FALSE(bad.ok);
    CHECK_THAT(bad.error, Contains("malformed chunked request body"));
    CHECK(upstream.sends.empty());

    const BodyForwarded large =
        forward_request_body(pair.gateway.get(), {Kind::chunked, 0}, "4\r\nabcd\r\n40000000\r\nxyz",
                             recorder(upstream), stop.get(), patient);
    CHECK_FALSE(large.ok);
    CHECK(large.error == "chunked request body larger than 1 GiB");
    CHECK(upstream.sends.empty());

    const BodyForwarded endless =
        forward_request_body(pair.gateway.get(), {Kind::chunked, 0}, "5;" + std::string(70000, 'x'),
                             recorder(upstream), stop.get(), patient);
    CHECK_FALSE(endless.ok);
    CHECK(endless.error == "a chunk-size line or trailer section longer than 64 KiB");
}

TEST_CASE("a client that stops mid-body is given up after the idle timeout", "[http-request]") {
    const SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    Upstream upstream;
    client_sends(pair, "de");

    const auto start = std::chrono::steady_clock::now();
    const BodyForwarded result = forward_request_body(pair.gateway.get(), {Kind::length, 10}, "abc",
                                                      recorder(upstream), stop.get(), impatient);
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK_FALSE(result.ok);
    CHECK(result.error == "the client sent nothing for 100 ms in the middle of the request body");
    CHECK(upstream.all() == "abcde");
    CHECK(took >= impatient - std::chrono::milliseconds(5)); // poll rounds to its clock tick
    CHECK(took < std::chrono::seconds(3));

    Upstream chunked;
    const BodyForwarded partial =
        forward_request_body(pair.gateway.get(), {Kind::chunked, 0}, "5\r\nab", recorder(chunked),
                             stop.get(), impatient);
    CHECK_FALSE(partial.ok);
    CHECK(chunked.all() == "2\r\nab\r\n");
}

TEST_CASE("a client that closes mid-body, or a stop event, ends the body", "[http-request]") {
    SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    Upstream upstream;
    client_sends(pair, "de");
    pair.client = Fd();
    const BodyForwarded closed = forward_request_body(pair.gateway.get(), {Kind::length, 10}, "abc",
                                                      recorder(upstream), stop.get(), patient);
    CHECK_FALSE(closed.ok);
    CHECK(closed.error == "the client closed the connection before the end of the request body");
    CHECK(upstream.all() == "abcde");

    const SocketPair quiet = socket_pair();
    fire_stop_event(stop.get());
    const auto start = std::chrono::steady_clock::now();
    const BodyForwarded stopped = forward_request_body(quiet.gateway.get(), {Kind::length, 10}, "",
                                                       recorder(upstream), stop.get(), patient);
    CHECK_FALSE(stopped.ok);
    CHECK(stopped.error == "the gateway is stopping");
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("an upstream that stops taking the body ends the forwarding", "[http-request]") {
    const SocketPair pair = socket_pair();
    const Fd stop = make_stop_event();
    client_sends(pair, "more body");
    int calls = 0;
    const auto gone = [&calls](std::string_view) {
        ++calls;
        return false;
    };
    const BodyForwarded result = forward_request_body(pair.gateway.get(), {Kind::length, 100},
                                                      "first", gone, stop.get(), patient);
    CHECK_FALSE(result.ok);
    CHECK(result.error == "the next hop stopped taking the request body");
    CHECK(calls == 1);

    calls = 0;
    const BodyForwarded chunked = forward_request_body(pair.gateway.get(), {Kind::chunked, 0},
                                                       "3\r\nabc\r\n", gone, stop.get(), patient);
    CHECK_FALSE(chunked.ok);
    CHECK(chunked.error == "the next hop stopped taking the request body");
    CHECK(calls == 1);

    const auto throws = [](std::string_view) -> bool {
        throw std::runtime_error("boom");
    };
    const BodyForwarded thrown = forward_request_body(pair.gateway.get(), {Kind::length, 3}, "abc",
                                                      throws, stop.get(), patient);
    CHECK_FALSE(thrown.ok);
    CHECK(thrown.error == "cannot forward the request body: boom");
}

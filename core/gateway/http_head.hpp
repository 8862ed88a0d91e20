#pragma once

#include "policy/network_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// HTTP/1.x request heads as a forward proxy sees them: parsing, and the heads the gateway
// sends on (to an origin server or to an upstream proxy).
namespace contractor::gateway {

// The most a request or response head may take; a longer head is refused.
inline constexpr std::size_t max_head_size = 64 * 1024;

// A host and a port, as in "example.org:443" or "[::1]:8080".
struct Endpoint {
    std::string host; // lower-case name or IPv4 address, or IPv6 address without brackets
    std::uint16_t port = 0;
};

// One header line, as received.
struct Header {
    std::string name;
    std::string value;
};

// How the request's body is delimited; the gateway forwards exactly one body.
struct BodyFraming {
    enum class Kind { none, length, chunked };
    Kind kind = Kind::none;
    std::uint64_t length = 0; // the Content-Length, when kind is length
};

// Where a client wants to go and what it asked for.
struct ProxyRequest {
    policy::Protocol protocol = policy::Protocol::http; // https for CONNECT
    Endpoint destination;
    std::string method;
    std::string path;    // the origin-form target ("/dists/x?y"); empty for CONNECT
    std::string version; // "HTTP/1.0" or "HTTP/1.1"
    std::vector<Header> headers;
    BodyFraming body; // from the one Content-Length or `Transfer-Encoding: chunked`, if any
};

// Why a request head cannot be served; the client gets 400 with this reason.
struct BadRequest {
    std::string reason;
};

// The length of the head at the start of `buffer` (through the blank line that ends it), or
// nullopt while it is incomplete. Accepts CRLF and bare LF line ends, so that a head ended
// by bare LFs is found and then refused by parse_request_head with a reason.
std::optional<std::size_t> head_length(std::string_view buffer);

// Parses a complete head (CR LF line ends) with Beast's parser: absolute-form requests (http),
// CONNECT (https), and origin-form requests with a Host header (http, for clients that take
// the gateway for the server). Refuses, so that the gateway and the next hop cannot disagree on
// where the request ends: control characters, obs-fold, an ambiguous or unsupported body
// framing, and a body on CONNECT. Never throws.
std::variant<ProxyRequest, BadRequest> parse_request_head(std::string_view head);

// Parses "host:port" or "[v6]:port"; without a port, `default_port` applies, or the
// authority is refused when there is none. Host names are lower-cased.
std::optional<Endpoint> parse_authority(std::string_view authority,
                                        std::optional<std::uint16_t> default_port);

// Parses an upstream proxy address, "http://HOST:PORT" (port 80 when omitted).
std::optional<Endpoint> parse_proxy_url(std::string_view url);

// "host:port", with brackets around an IPv6 address.
std::string format_authority(const Endpoint& endpoint);

// The head to send on for an http request: origin-form to the server itself, or
// absolute-form to an upstream proxy; hop-by-hop headers dropped, Host set from the
// destination, `Connection: close` added.
std::string upstream_request_head(const ProxyRequest& request, bool absolute_form);

// The head asking an upstream proxy for a tunnel to `destination`.
std::string connect_request_head(const Endpoint& destination);

// The status code of a response head, nullopt when it is not "HTTP/1.x NNN ...".
std::optional<int> response_status(std::string_view head);

// A complete response with a short text body, closing the connection.
std::string text_response(int status, std::string_view reason, std::string_view body);

} // namespace contractor::gateway

#include "gateway/http_head.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>
#include <exception>
#include <limits>

namespace contractor::gateway {

namespace {

namespace http = boost::beast::http;

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

std::string to_lower(std::string_view text) {
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
    return text.size() >= prefix.size() && iequals(text.substr(0, prefix.size()), prefix);
}

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

bool is_host_name(std::string_view host) {
    return !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || text.size() > 5 || error != std::errc() ||
        end != text.data() + text.size() || value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

// Headers a proxy must not pass on (RFC 9110 7.6.1), plus Host, which is set from the target,
// and Trailer, which would announce trailer fields that forward_request_body drops.
bool is_hop_by_hop(std::string_view name, std::string_view connection_value) {
    static constexpr std::string_view always[] = {
        "connection", "proxy-connection", "keep-alive", "proxy-authorization",
        "te",         "upgrade",          "host",       "trailer",
    };
    for (auto hop : always) {
        if (iequals(name, hop)) {
            return true;
        }
    }
    // The framing headers stay even when Connection names them: the body is forwarded with the
    // framing they declare (see request_body.hpp).
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding")) {
        return false;
    }
    while (!connection_value.empty()) {
        const auto comma = connection_value.find(',');
        if (iequals(trim(connection_value.substr(0, comma)), name)) {
            return true;
        }
        connection_value.remove_prefix(comma == connection_value.npos ? connection_value.size()
                                                                      : comma + 1);
    }
    return false;
}

// The Host header value for a destination: the port is left out when it is the default.
std::string host_header_value(const Endpoint& destination) {
    return destination.port == 80 ? format_authority({destination.host, 0})
                                  : format_authority(destination);
}

std::variant<ProxyRequest, BadRequest> parse_target(ProxyRequest request, std::string_view target,
                                                    const std::string* host_header) {
    if (request.method == "CONNECT") {
        const auto destination = parse_authority(target, std::nullopt);
        if (!destination) {
            return BadRequest{"CONNECT needs HOST:PORT, not '" + std::string(target) + "'"};
        }
        request.protocol = policy::Protocol::https;
        request.destination = *destination;
        return request;
    }
    request.protocol = policy::Protocol::http;
    if (starts_with_nocase(target, "http://")) {
        target.remove_prefix(7);
        const auto authority_end = target.find_first_of("/?#");
        const std::string_view authority = target.substr(0, authority_end);
        const auto destination = parse_authority(authority, 80);
        if (!destination) {
            return BadRequest{"bad host in URL: '" + std::string(authority) + "'"};
        }
        request.destination = *destination;
        target.remove_prefix(authority.size());
        request.path = target.empty() || target.front() != '/' ? "/" + std::string(target)
                                                               : std::string(target);
        return request;
    }
    if (target.find("://") != target.npos) {
        return BadRequest{"only http:// URLs can be proxied; https goes through CONNECT"};
    }
    if (target.empty() || target.front() != '/') {
        return BadRequest{"unsupported request target '" + std::string(target) + "'"};
    }
    if (host_header == nullptr) {
        return BadRequest{"a request for a path needs a Host header"};
    }
    const auto destination = parse_authority(*host_header, 80);
    if (!destination) {
        return BadRequest{"bad Host header: '" + *host_header + "'"};
    }
    request.destination = *destination;
    request.path = std::string(target);
    return request;
}

// At most this much of a client's text is quoted back in a reason: enough to recognise it,
// while a 64 KiB header value does not become a 64 KiB answer.
constexpr std::size_t max_quoted = 80;

std::string quoted(std::string_view text) {
    return "'" + std::string(text.substr(0, max_quoted)) +
           (text.size() > max_quoted ? "...'" : "'");
}

// "0x0D", for a reason that names a byte.
std::string hex_byte(char c) {
    static constexpr char digits[] = "0123456789ABCDEF";
    const auto byte = static_cast<unsigned char>(c);
    return std::string("0x") + digits[byte >> 4] + digits[byte & 0xF];
}

// The lines of a head up to the blank line that ends it, without their CR LF ends. Text that
// no CR LF ends (a line ended by a bare LF, say) stays in the line before, to be refused there.
std::vector<std::string_view> crlf_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
        const auto end = head.find("\r\n");
        const std::string_view line = head.substr(0, end);
        if (line.empty()) {
            break;
        }
        lines.push_back(line);
        head.remove_prefix(end == head.npos ? head.size() : end + 2);
    }
    return lines;
}

// Why one line of the head is refused for its bytes, or nullopt. A bare CR or LF is a control
// character like any other: a next hop that took it for a line end would see other headers.
// HTAB may appear in header values only (Beast refuses it in a name, which must be a token).
std::optional<BadRequest> check_line_bytes(std::string_view line, bool request_line) {
    const std::string where = request_line ? "the request line" : "a header line";
    if (!request_line && (line.front() == ' ' || line.front() == '\t')) {
        return BadRequest{"obsolete line folding (a header line starting with a space or tab)"};
    }
    for (const char c : line) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '\n') {
            return BadRequest{"a bare LF in " + where + "; lines must end with CR LF"};
        }
        if ((byte < 0x20 && !(c == '\t' && !request_line)) || byte == 0x7f) {
            return BadRequest{"control character " + hex_byte(c) + " in " + where};
        }
    }
    return std::nullopt;
}

std::optional<BadRequest> check_bytes(const std::vector<std::string_view>& lines) {
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (auto bad = check_line_bytes(lines[i], i == 0)) {
            return bad;
        }
    }
    return std::nullopt;
}

// The values of every header line named `name` (case-insensitive), without surrounding blanks.
// Lines without a colon are skipped here; Beast refuses them.
std::vector<std::string_view> raw_values(const std::vector<std::string_view>& lines,
                                         std::string_view name) {
    std::vector<std::string_view> values;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto colon = lines[i].find(':');
        if (colon != lines[i].npos && iequals(lines[i].substr(0, colon), name)) {
            values.push_back(trim(lines[i].substr(colon + 1)));
        }
    }
    return values;
}

std::variant<BodyFraming, BadRequest> content_length_framing(std::string_view value) {
    std::uint64_t length = 0;
    const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), length);
    if (error == std::errc::result_out_of_range) {
        return BadRequest{"Content-Length too large: " + quoted(value)};
    }
    // from_chars also takes a leading '-'; a length is digits only.
    if (value.empty() || value.front() == '-' || error != std::errc() ||
        end != value.data() + value.size()) {
        return BadRequest{"Content-Length is not a decimal number: " + quoted(value)};
    }
    return BodyFraming{BodyFraming::Kind::length, length};
}

// How the body ends, from the raw header lines, or why the framing is refused. Checked before
// Beast reads the head: Beast 1.74 accepts some of these (two equal Content-Lengths, a
// Transfer-Encoding that is not chunked) and refuses others with a reason that depends on the
// order of the headers. Any framing a next hop could read differently from us is refused.
std::variant<BodyFraming, BadRequest> body_framing(const std::vector<std::string_view>& lines) {
    const auto lengths = raw_values(lines, "content-length");
    const auto encodings = raw_values(lines, "transfer-encoding");
    if (!lengths.empty() && !encodings.empty()) {
        return BadRequest{"both Content-Length and Transfer-Encoding: where the body ends would "
                          "be ambiguous"};
    }
    // Even two equal Content-Length headers are refused: RFC 9112 lets a recipient merge them,
    // but no client we serve sends two, and refusing beats reasoning about every next hop's rule.
    if (lengths.size() > 1) {
        return BadRequest{"more than one Content-Length header"};
    }
    if (encodings.size() > 1) {
        return BadRequest{"more than one Transfer-Encoding header"};
    }
    if (lengths.size() == 1) {
        return content_length_framing(lengths.front());
    }
    if (encodings.size() == 1) {
        if (!iequals(encodings.front(), "chunked")) {
            return BadRequest{"Transfer-Encoding must be exactly 'chunked', not " +
                              quoted(encodings.front())};
        }
        return BodyFraming{BodyFraming::Kind::chunked, 0};
    }
    return BodyFraming{};
}

// The framing rules that depend on the request line: CONNECT has no body (an empty
// `Content-Length: 0` is tolerated), and HTTP/1.0 has no chunked encoding (RFC 9112 6.1).
std::optional<BadRequest> check_framing_for(ProxyRequest& request) {
    BodyFraming& body = request.body;
    if (request.method == "CONNECT") {
        if (body.kind == BodyFraming::Kind::chunked || body.length > 0) {
            return BadRequest{"a CONNECT request cannot have a body"};
        }
        body = BodyFraming{};
    }
    if (body.kind == BodyFraming::Kind::chunked && request.version == "HTTP/1.0") {
        return BadRequest{"Transfer-Encoding in an HTTP/1.0 request"};
    }
    return std::nullopt;
}

std::string_view to_std(boost::beast::string_view text) {
    return {text.data(), text.size()};
}

std::string beast_reason(const boost::beast::error_code& error) {
    if (error == http::error::need_more) {
        return "incomplete request head";
    }
    if (error == http::error::header_limit) {
        return "request head larger than 64 KiB";
    }
    if (error == http::error::bad_method || error == http::error::bad_target ||
        error == http::error::bad_version) {
        return "malformed request line";
    }
    if (error == http::error::bad_field || error == http::error::bad_value ||
        error == http::error::bad_line_ending || error == http::error::bad_obs_fold) {
        return "malformed header line";
    }
    return "malformed request head (" + error.message() + ")";
}

// What Beast read from a head: the request (method, version, headers) and its target.
struct BeastHead {
    ProxyRequest request;
    std::string target;
    std::optional<std::string> host;
};

// Reads the request line and the header fields with Beast's parser, stopping at the end of
// the head, and checks that Beast's idea of the body framing is `framing`.
std::variant<BeastHead, BadRequest> read_with_beast(std::string_view head,
                                                    const BodyFraming& framing) {
    http::request_parser<http::empty_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(max_head_size));
    // Bodies are not parsed here (the caller meters them), so no limit; not `boost::none`, which
    // Beast 1.74 compares with the Content-Length as if it were 0, refusing every body.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    parser.eager(false); // stop after the head
    boost::beast::error_code error;
    const std::size_t used = parser.put(boost::asio::const_buffer(head.data(), head.size()), error);
    if (error) {
        return BadRequest{beast_reason(error)};
    }
    if (!parser.is_header_done() || used != head.size()) {
        return BadRequest{"bytes after the end of the request head"};
    }
    const bool chunked = framing.kind == BodyFraming::Kind::chunked;
    const auto length = parser.content_length();
    if (parser.chunked() != chunked ||
        length.value_or(0) != (framing.kind == BodyFraming::Kind::length ? framing.length : 0)) {
        return BadRequest{"malformed request head (body framing)"}; // not reached: a safety net
    }
    const auto& message = parser.get();
    BeastHead out;
    out.request.method = std::string(to_std(message.method_string()));
    out.request.version = message.version() == 10 ? "HTTP/1.0" : "HTTP/1.1";
    out.request.body = framing;
    out.target = std::string(to_std(message.target()));
    for (const auto& field : message) {
        const std::string_view name = to_std(field.name_string());
        const std::string_view value = to_std(field.value());
        if (iequals(name, "host")) {
            if (out.host) {
                return BadRequest{"more than one Host header"};
            }
            out.host = std::string(value);
        }
        out.request.headers.push_back({std::string(name), std::string(value)});
    }
    return out;
}

std::variant<ProxyRequest, BadRequest> parse_checked_head(std::string_view head) {
    const auto lines = crlf_lines(head);
    if (lines.empty()) {
        return BadRequest{"empty request"};
    }
    if (auto bad = check_bytes(lines)) {
        return *bad;
    }
    auto framing = body_framing(lines);
    if (const auto* bad = std::get_if<BadRequest>(&framing)) {
        return *bad;
    }
    auto read = read_with_beast(head, std::get<BodyFraming>(framing));
    if (const auto* bad = std::get_if<BadRequest>(&read)) {
        return *bad;
    }
    BeastHead& parsed = std::get<BeastHead>(read);
    if (auto bad = check_framing_for(parsed.request)) {
        return *bad;
    }
    return parse_target(std::move(parsed.request), parsed.target,
                        parsed.host ? &*parsed.host : nullptr);
}

} // namespace

std::optional<std::size_t> head_length(std::string_view buffer) {
    std::size_t line_start = 0;
    while (true) {
        const auto newline = buffer.find('\n', line_start);
        if (newline == buffer.npos) {
            return std::nullopt;
        }
        const std::string_view line = buffer.substr(line_start, newline - line_start);
        if (line_start > 0 && (line.empty() || line == "\r")) {
            return newline + 1;
        }
        line_start = newline + 1;
    }
}

std::variant<ProxyRequest, BadRequest> parse_request_head(std::string_view head) {
    try {
        return parse_checked_head(head);
    } catch (const std::exception& error) {
        return BadRequest{std::string("cannot parse the request head: ") + error.what()};
    }
}

std::optional<Endpoint> parse_authority(std::string_view authority,
                                        std::optional<std::uint16_t> default_port) {
    std::string_view host = authority;
    std::string_view port_text;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == authority.npos) {
            return std::nullopt;
        }
        host = authority.substr(1, close - 1);
        const auto rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return std::nullopt;
            }
            port_text = rest.substr(1);
            has_port = true;
        }
        in6_addr address{};
        if (::inet_pton(AF_INET6, std::string(host).c_str(), &address) != 1) {
            return std::nullopt;
        }
    } else {
        const auto colon = authority.find(':');
        if (colon != authority.npos) {
            host = authority.substr(0, colon);
            port_text = authority.substr(colon + 1);
            has_port = true;
        }
        if (!host.empty() && host.back() == '.') {
            host.remove_suffix(1); // "example.org." is example.org
        }
        if (!is_host_name(host)) {
            return std::nullopt;
        }
    }
    std::optional<std::uint16_t> port = has_port ? parse_port(port_text) : default_port;
    if (!port) {
        return std::nullopt;
    }
    return Endpoint{to_lower(host), *port};
}

std::optional<Endpoint> parse_proxy_url(std::string_view url) {
    if (!starts_with_nocase(url, "http://")) {
        return std::nullopt;
    }
    url.remove_prefix(7);
    if (!url.empty() && url.back() == '/') {
        url.remove_suffix(1);
    }
    return parse_authority(url, 80);
}

std::string format_authority(const Endpoint& endpoint) {
    std::string out =
        endpoint.host.find(':') != std::string::npos ? "[" + endpoint.host + "]" : endpoint.host;
    if (endpoint.port != 0) {
        out += ":" + std::to_string(endpoint.port);
    }
    return out;
}

std::string upstream_request_head(const ProxyRequest& request, bool absolute_form) {
    std::string connection_value;
    for (const auto& header : request.headers) {
        if (iequals(header.name, "connection") || iequals(header.name, "proxy-connection")) {
            connection_value += header.value + ",";
        }
    }
    const std::string host = host_header_value(request.destination);
    std::string head = request.method + " " +
                       (absolute_form ? "http://" + host + request.path : request.path) + " " +
                       request.version + "\r\nHost: " + host + "\r\n";
    for (const auto& header : request.headers) {
        if (!is_hop_by_hop(header.name, connection_value)) {
            head += header.name + ": " + header.value + "\r\n";
        }
    }
    head += "Connection: close\r\n\r\n";
    return head;
}

std::string connect_request_head(const Endpoint& destination) {
    const std::string authority = format_authority(destination);
    return "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n\r\n";
}

std::optional<int> response_status(std::string_view head) {
    if (head.size() < 12 || !head.starts_with("HTTP/1.") || head[8] != ' ') {
        return std::nullopt;
    }
    int status = 0;
    const auto [end, error] = std::from_chars(head.data() + 9, head.data() + 12, status);
    if (error != std::errc() || end != head.data() + 12) {
        return std::nullopt;
    }
    return status;
}

std::string text_response(int status, std::string_view reason, std::string_view body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
           "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + std::string(body);
}

} // namespace contractor::gateway

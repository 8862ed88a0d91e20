#include "gateway/http_head.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <charconv>

namespace contractor::gateway {

namespace {

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

// RFC 9110 token characters, as in methods and header names.
bool is_token(std::string_view text) {
    static constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
    return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || extra.find(c) != extra.npos;
    });
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

// Splits a head into lines without their CR LF / LF ends; the blank last line is dropped.
std::vector<std::string_view> split_lines(std::string_view head) {
    std::vector<std::string_view> lines;
    while (!head.empty()) {
        const auto end = head.find('\n');
        std::string_view line = head.substr(0, end);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            break;
        }
        lines.push_back(line);
        head.remove_prefix(end == head.npos ? head.size() : end + 1);
    }
    return lines;
}

// Headers a proxy must not pass on (RFC 9110 7.6.1), plus Host, which is set from the target.
bool is_hop_by_hop(std::string_view name, std::string_view connection_value) {
    static constexpr std::string_view always[] = {
        "connection", "proxy-connection", "keep-alive", "proxy-authorization",
        "te",         "upgrade",          "host",
    };
    for (auto hop : always) {
        if (iequals(name, hop)) {
            return true;
        }
    }
    // The framing headers stay even when Connection names them: the body is relayed as is.
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
    const auto lines = split_lines(head);
    if (lines.empty()) {
        return BadRequest{"empty request"};
    }
    const std::string_view request_line = lines.front();
    const auto first_space = request_line.find(' ');
    const auto last_space = request_line.rfind(' ');
    if (first_space == request_line.npos || first_space == last_space) {
        return BadRequest{"malformed request line"};
    }
    ProxyRequest request;
    request.method = std::string(request_line.substr(0, first_space));
    const auto target = request_line.substr(first_space + 1, last_space - first_space - 1);
    request.version = std::string(request_line.substr(last_space + 1));
    if (!is_token(request.method) || target.empty() || target.find(' ') != target.npos ||
        (request.version != "HTTP/1.1" && request.version != "HTTP/1.0")) {
        return BadRequest{"malformed request line"};
    }
    std::optional<std::string> host;
    for (std::size_t i = 1; i < lines.size(); ++i) {
        const auto colon = lines[i].find(':');
        const auto name = lines[i].substr(0, colon);
        if (colon == lines[i].npos || !is_token(name)) {
            return BadRequest{"malformed header line"};
        }
        const auto value = trim(lines[i].substr(colon + 1));
        if (iequals(name, "host")) {
            if (host) {
                return BadRequest{"more than one Host header"};
            }
            host = std::string(value);
        }
        request.headers.push_back({std::string(name), std::string(value)});
    }
    return parse_target(std::move(request), target, host ? &*host : nullptr);
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

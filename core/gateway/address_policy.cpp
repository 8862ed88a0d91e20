#include "gateway/address_policy.hpp"

#include <arpa/inet.h>
#include <cstring>
#include <ifaddrs.h>
#include <memory>
#include <netdb.h>
#include <netinet/in.h>

namespace contractor::gateway {

namespace {

// One IPv4 range and what it is.
struct Range {
    std::uint32_t network;
    unsigned prefix;
    std::string_view kind;
};

constexpr std::uint32_t ip(unsigned a, unsigned b, unsigned c, unsigned d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

// The IPv4 ranges a build never reaches on its own: they lead into the machine the gateway
// runs on or the networks around it. The most specific comes first (QEMU's network inside 10/8).
constexpr Range internal_ipv4[] = {
    {ip(10, 0, 2, 0), 24, "QEMU's user network"},
    {ip(0, 0, 0, 0), 8, "unspecified"},
    {ip(10, 0, 0, 0), 8, "private"},
    {ip(100, 64, 0, 0), 10, "shared address space"},
    {ip(127, 0, 0, 0), 8, "loopback"},
    {ip(169, 254, 0, 0), 16, "link-local"},
    {ip(172, 16, 0, 0), 12, "private"},
    {ip(192, 0, 0, 0), 24, "IETF protocol assignments"},
    {ip(192, 168, 0, 0), 16, "private"},
    {ip(198, 18, 0, 0), 15, "benchmarking"},
    {ip(224, 0, 0, 0), 4, "multicast"},
    {ip(240, 0, 0, 0), 4, "reserved"},
};

std::optional<std::string_view> internal_ipv4_kind(std::uint32_t address) {
    for (const auto& range : internal_ipv4) {
        const std::uint32_t mask = range.prefix == 0 ? 0 : ~0U << (32 - range.prefix);
        if ((address & mask) == range.network) {
            return range.kind;
        }
    }
    return std::nullopt;
}

std::uint32_t ipv4_at(const std::uint8_t* bytes) {
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) |
           (std::uint32_t{bytes[2]} << 8) | std::uint32_t{bytes[3]};
}

bool starts_with_bytes(const std::uint8_t* bytes, std::initializer_list<std::uint8_t> prefix) {
    return std::memcmp(bytes, prefix.begin(), prefix.size()) == 0;
}

std::optional<std::string_view> internal_ipv6_kind(const in6_addr& address) {
    const std::uint8_t* bytes = address.s6_addr;
    static constexpr std::uint8_t zero[16] = {};
    if (std::memcmp(bytes, zero, 15) == 0 && (bytes[15] == 0 || bytes[15] == 1)) {
        return bytes[15] == 0 ? "unspecified" : "loopback";
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated) and 64:ff9b::a.b.c.d (NAT64)
    // reach the IPv4 address inside.
    if (starts_with_bytes(bytes, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}) ||
        starts_with_bytes(bytes, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) ||
        starts_with_bytes(bytes, {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0})) {
        return internal_ipv4_kind(ipv4_at(bytes + 12));
    }
    if (bytes[0] == 0x20 && bytes[1] == 0x02) { // 6to4: 2002:a.b.c.d::/48
        return internal_ipv4_kind(ipv4_at(bytes + 2));
    }
    if ((bytes[0] & 0xfe) == 0xfc) {
        return "private";
    }
    if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80) {
        return "link-local";
    }
    if (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0xc0) {
        return "site-local";
    }
    if (bytes[0] == 0xff) {
        return "multicast";
    }
    return std::nullopt;
}

} // namespace

std::optional<std::string_view> internal_address_kind(const sockaddr& address) {
    if (address.sa_family == AF_INET) {
        const auto& v4 = reinterpret_cast<const sockaddr_in&>(address);
        return internal_ipv4_kind(ntohl(v4.sin_addr.s_addr));
    }
    if (address.sa_family == AF_INET6) {
        return internal_ipv6_kind(reinterpret_cast<const sockaddr_in6&>(address).sin6_addr);
    }
    return "not an IP address";
}

std::string address_text(const sockaddr& address) {
    char text[INET6_ADDRSTRLEN] = {};
    if (address.sa_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(address).sin_addr, text,
                    sizeof text);
    } else if (address.sa_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(address).sin6_addr, text,
                    sizeof text);
    }
    return text;
}

std::optional<std::string> canonical_ip(std::string_view text) {
    const std::string copy(text);
    char out[INET6_ADDRSTRLEN] = {};
    in_addr v4{};
    in6_addr v6{};
    // inet_pton, not inet_aton: "127.1" and "0x7f.0.0.1" are not IP literals here.
    if (::inet_pton(AF_INET, copy.c_str(), &v4) == 1) {
        return ::inet_ntop(AF_INET, &v4, out, sizeof out);
    }
    if (::inet_pton(AF_INET6, copy.c_str(), &v6) == 1) {
        return ::inet_ntop(AF_INET6, &v6, out, sizeof out);
    }
    return std::nullopt;
}

std::set<std::string> own_addresses() {
    std::set<std::string> addresses;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) {
        return addresses;
    }
    std::unique_ptr<ifaddrs, decltype(&::freeifaddrs)> owned(list, &::freeifaddrs);
    for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
        if (entry->ifa_addr != nullptr &&
            (entry->ifa_addr->sa_family == AF_INET || entry->ifa_addr->sa_family == AF_INET6)) {
            addresses.insert(address_text(*entry->ifa_addr));
        }
    }
    return addresses;
}

CheckedAddresses resolve_checked(const std::string& host, unsigned short port,
                                 const std::set<std::string>& trusted,
                                 const std::set<std::string>& own, bool trust_all) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (canonical_ip(host)) {
        hints.ai_flags |= AI_NUMERICHOST;
    }
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int status = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
    CheckedAddresses checked;
    if (status != 0) {
        checked.resolved = false;
        checked.refusal = "cannot resolve " + host + ": " + ::gai_strerror(status);
        return checked;
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned(found, &::freeaddrinfo);
    for (const addrinfo* address = found; address != nullptr; address = address->ai_next) {
        const std::string text = address_text(*address->ai_addr);
        if (trust_all || trusted.contains(text)) {
            // Named literally in the user's config: the user chose to let builds reach it.
        } else if (const auto kind = internal_address_kind(*address->ai_addr)) {
            checked.refusal = host + " resolves to " + text + " (" + std::string(*kind) +
                              "), which only the user's config can allow, by naming that address";
            continue;
        } else if (own.contains(text)) {
            checked.refusal = host + " resolves to " + text +
                              ", an address of the gateway's own machine, which only the "
                              "user's config can allow, by naming that address";
            continue;
        }
        sockaddr_storage storage{};
        std::memcpy(&storage, address->ai_addr, address->ai_addrlen);
        checked.addresses.push_back(storage);
    }
    if (!checked.addresses.empty()) {
        checked.refusal.clear();
    } else if (checked.refusal.empty()) {
        checked.refusal = "no address for " + host;
    }
    return checked;
}

} // namespace contractor::gateway

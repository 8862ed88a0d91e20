#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <vector>

// Which addresses the gateway connects to. A name the worker may reach can still resolve to
// the manager's own loopback, a private network, the cloud metadata address or QEMU's network:
// the gateway resolves a name once, checks every address it got, and connects only to an
// address it checked (no second lookup that a short-lived DNS answer could rebind).
namespace contractor::gateway {

// Why `address` is never connected to unless the user's config names it literally ("loopback",
// "private", "link-local", ...), or nullopt for a public address. IPv4-mapped and NAT64 IPv6
// addresses are judged by the IPv4 address inside them.
std::optional<std::string_view> internal_address_kind(const sockaddr& address);

// The address in text ("192.0.2.1", "2001:db8::1"), as inet_ntop writes it.
std::string address_text(const sockaddr& address);

// The canonical text of an IP literal ("::0001" -> "::1"), or nullopt when `text` is none.
std::optional<std::string> canonical_ip(std::string_view text);

// The addresses of this machine's own interfaces, in canonical text: inside the manager VM,
// what the gateway must not reach on the worker's behalf whatever their range.
std::set<std::string> own_addresses();

// The addresses the gateway may connect to for one destination, or why none.
struct CheckedAddresses {
    std::vector<sockaddr_storage> addresses;
    std::string refusal;  // empty when `addresses` holds at least one
    bool resolved = true; // false when the name did not resolve (not a refusal by policy)
};

// Resolves `host` once (an IP literal without a lookup) and keeps the addresses that are
// public, not this machine's own, or named in `trusted` (canonical text); every address when
// `trust_all` (the user's own upstream proxy). `port` goes into every address.
CheckedAddresses resolve_checked(const std::string& host, unsigned short port,
                                 const std::set<std::string>& trusted,
                                 const std::set<std::string>& own, bool trust_all = false);

} // namespace contractor::gateway

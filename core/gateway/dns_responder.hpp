#pragma once

#include "gateway/socket.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

// The worker's only name server: DNS over TCP (RFC 1035, RFC 7766) answered from a callback,
// never by asking another server. glibc in the worker asks over TCP (`options use-vc`) through
// a forwarded port; every question is recorded so that the build report can show which names
// the build tried to look up.
namespace contractor::gateway {

// The longest query message accepted (RFC 1035's limit for a UDP message). A query holds one
// name of at most 255 bytes, a 12-byte header, type and class, and at most one small EDNS
// record: an honest query is far below this; a longer one is not a query we answer.
inline constexpr std::size_t max_dns_query_size = 512;

// The most queries one TCP connection may send. glibc opens a connection per lookup and asks
// A and AAAA on it, once per search-domain candidate: a handful of queries. The cap stops one
// connection from holding a gateway thread (and feeding the record of names) without end.
inline constexpr std::size_t max_dns_queries_per_connection = 1000;

// One question the worker asked.
struct DnsQuestion {
    std::string name;       // lower-case, no trailing dot; empty for the root
    std::uint16_t type = 0; // 1 A, 28 AAAA, ...
};

// The answer for a name: an IPv4 address to give (A questions), or nothing (the name does
// not exist: NXDOMAIN).
using DnsLookup = std::function<std::optional<std::array<std::uint8_t, 4>>(const DnsQuestion&)>;

// Parses one DNS query message (without the TCP length prefix): exactly one question, opcode
// QUERY, class IN, a plain name (no compression, labels of [a-z0-9_-] after lower-casing,
// within RFC 1035's lengths), no answer or authority records, at most one additional record
// (an EDNS OPT, which is ignored). nullopt for anything else.
std::optional<DnsQuestion> parse_dns_query(std::string_view message);

// The response message to `query` (its ID, its question echoed byte for byte): an A record
// (TTL 60) when `lookup` gives an address for an A question; NOERROR with no answer for other
// types of a name that exists; NXDOMAIN when it does not; FORMERR for a message that is not a
// query as parse_dns_query accepts it; REFUSED for another opcode or class. Empty when the
// 12-byte header is not there (there is no ID to answer). Sets `*asked` (when not null) to
// what parse_dns_query returns; `lookup` is called only for such a question, and what it
// throws passes through.
std::string dns_response(std::string_view query, const DnsLookup& lookup,
                         std::optional<DnsQuestion>* asked);

// Serves DNS over TCP (a 2-byte big-endian length before each message) on `client` until it
// closes, `stop_fd` becomes readable, a message does not arrive in full within
// `idle_timeout`, it sends a length above max_dns_query_size or a message without a header,
// or it has sent max_dns_queries_per_connection queries. Each parsed question goes to
// `record` before it is answered. Never throws.
void serve_dns_connection(Fd client, int stop_fd, const DnsLookup& lookup,
                          const std::function<void(const DnsQuestion&)>& record,
                          std::chrono::milliseconds idle_timeout) noexcept;

} // namespace contractor::gateway

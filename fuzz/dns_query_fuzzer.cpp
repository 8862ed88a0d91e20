// Feeds arbitrary bytes as one DNS query message from a hostile build to the gateway's DNS
// responder, with a lookup that knows one name. No exception may come out; a response that does
// not answer the query's ID, is longer than any answer can be, or disagrees with
// parse_dns_query about the question is a finding, and so is a crash, leak or sanitizer report.
#include "gateway/dns_responder.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using contractor::gateway::DnsQuestion;

// A header, the longest question (255-byte name, type, class) and one A record.
constexpr std::size_t longest_response = 12 + 255 + 4 + 16;

std::optional<std::array<std::uint8_t, 4>> one_name(const DnsQuestion& question) {
    if (question.name == "deb.debian.org") {
        return std::array<std::uint8_t, 4>{192, 0, 2, 10};
    }
    return std::nullopt;
}

bool plain_name(const std::string& name) {
    if (name.size() > 253) {
        return false;
    }
    for (const char c : name) {
        const bool allowed =
            (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
        if (!allowed) {
            return false;
        }
    }
    return true;
}

void check(bool condition) {
    if (!condition) {
        std::abort();
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view query(reinterpret_cast<const char*>(data), size);
    std::optional<DnsQuestion> asked;
    const std::string response = contractor::gateway::dns_response(query, one_name, &asked);
    const auto parsed = contractor::gateway::parse_dns_query(query);

    check(asked.has_value() == parsed.has_value());
    if (size < 12) {
        check(response.empty());
        return 0;
    }
    check(response.size() >= 12 && response.size() <= longest_response);
    check(response.compare(0, 2, query.substr(0, 2)) == 0);      // the query's ID
    check((static_cast<std::uint8_t>(response[2]) & 0x80) != 0); // QR: a response
    if (asked) {
        check(asked->name == parsed->name && asked->type == parsed->type);
        check(plain_name(asked->name));
        const auto rcode = static_cast<std::uint8_t>(response[3]) & 0x0F;
        check(rcode == 0 || rcode == 3);
    }
    return 0;
}

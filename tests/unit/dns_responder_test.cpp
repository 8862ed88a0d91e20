// Tests for gateway/dns_responder.hpp: query messages built byte by byte, the exact responses,
// and a connection served over a socketpair.
#include "gateway/dns_responder.hpp"
#include "gateway/socket.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace contractor::gateway;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t type_a = 1;
constexpr std::uint16_t type_aaaa = 28;
constexpr std::uint16_t class_in = 1;
constexpr std::uint16_t class_chaos = 3;
constexpr std::uint16_t flag_rd = 0x0100;

// Bytes from a list, so that no "\x.." escape runs into the character after it.
std::string bytes(std::initializer_list<int> values) {
    std::string out;
    for (const int value : values) {
        out += static_cast<char>(value);
    }
    return out;
}

std::string u16(std::uint16_t value) {
    return bytes({value >> 8, value & 0xFF}); // promoted to int: no narrowing
}

// "deb.debian.org" as length-prefixed labels and the root's empty label.
std::string wire_name(const std::string& dotted) {
    std::string out;
    if (dotted.empty()) {
        return out + '\0';
    }
    std::size_t start = 0;
    while (start <= dotted.size()) {
        const std::size_t end = std::min(dotted.find('.', start), dotted.size());
        out += static_cast<char>(end - start);
        out += dotted.substr(start, end - start);
        start = end + 1;
    }
    return out + '\0';
}

std::string question(const std::string& wire, std::uint16_t type, std::uint16_t klass = class_in) {
    return wire + u16(type) + u16(klass);
}

// A header with the given counts, then `sections` as they are.
std::string message(std::uint16_t id, std::uint16_t flags, const std::string& sections,
                    std::uint16_t questions = 1, std::uint16_t additional = 0) {
    return u16(id) + u16(flags) + u16(questions) + u16(0) + u16(0) + u16(additional) + sections;
}

std::string a_query(std::uint16_t id, const std::string& name, std::uint16_t type = type_a) {
    return message(id, flag_rd, question(wire_name(name), type));
}

// Knows one name, and counts how often it was asked.
struct Names {
    int lookups = 0;
    std::vector<DnsQuestion> seen;

    DnsLookup lookup() {
        return [this](const DnsQuestion& question) -> std::optional<std::array<std::uint8_t, 4>> {
            ++lookups;
            seen.push_back(question);
            if (question.name == "deb.debian.org") {
                return std::array<std::uint8_t, 4>{192, 0, 2, 10};
            }
            return std::nullopt;
        };
    }
};

// The response header a FORMERR or REFUSED without a question has.
std::string bare_header(std::uint16_t id, std::uint16_t flags) {
    return u16(id) + u16(flags) + u16(0) + u16(0) + u16(0) + u16(0);
}

// Every blocking call in these tests gives up after this, so a broken responder fails a test
// instead of hanging the suite.
void set_io_timeouts(int fd) {
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
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

std::string read_until_closed(int fd) {
    std::string out;
    char chunk[65536];
    ssize_t got = 0;
    while ((got = ::read(fd, chunk, sizeof chunk)) > 0) {
        out.append(chunk, static_cast<std::size_t>(got));
    }
    return out;
}

// What a served connection sent back and recorded.
struct Served {
    std::string output;
    std::vector<DnsQuestion> recorded;
    std::chrono::steady_clock::duration took{};
};

// Serves one socketpair connection: writes `input` in one go (from its own thread, so that a
// long input cannot block against unread answers), reads until the responder closes.
Served serve(const std::string& input, std::chrono::milliseconds idle_timeout = 5s,
             bool stop_first = false) {
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
    const Fd client(ends[0]);
    Fd server(ends[1]);
    set_io_timeouts(client.get());
    const Fd stop = make_stop_event();
    if (stop_first) {
        fire_stop_event(stop.get());
    }
    Names names;
    Served served;
    const auto started = std::chrono::steady_clock::now();
    std::thread responder([&, server = std::move(server)]() mutable {
        serve_dns_connection(
            std::move(server), stop.get(), names.lookup(),
            [&](const DnsQuestion& asked) { served.recorded.push_back(asked); }, idle_timeout);
        served.took = std::chrono::steady_clock::now() - started;
    });
    std::thread writer([&] { send_text(client.get(), input); });
    served.output = read_until_closed(client.get());
    writer.join();
    responder.join();
    return served;
}

std::string length_prefixed(const std::string& text) {
    return u16(static_cast<std::uint16_t>(text.size())) + text;
}

} // namespace

TEST_CASE("an A question for a known name gets exactly one A record", "[dns]") {
    Names names;
    const std::string asked_question = question(wire_name("Deb.Debian.ORG"), type_a);
    std::optional<DnsQuestion> asked;
    const std::string response =
        dns_response(message(0x1234, flag_rd, asked_question), names.lookup(), &asked);

    const std::string expected =
        bytes({0x12, 0x34, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 0}) + // ID, QR|RD, 1 question, 1 answer
        asked_question +                                          // echoed as sent, case and all
        bytes({0xC0, 0x0C, 0, 1, 0, 1}) +                         // name -> question's, A, IN
        bytes({0, 0, 0, 60, 0, 4, 192, 0, 2, 10});                // TTL 60, 4 bytes, the address
    CHECK(response == expected);
    REQUIRE(asked.has_value());
    CHECK(asked->name == "deb.debian.org");
    CHECK(asked->type == type_a);
    REQUIRE(names.seen.size() == 1);
    CHECK(names.seen[0].name == "deb.debian.org");

    // RD is copied, not set: a query without it gets QR alone.
    const std::string without_rd = dns_response(
        message(7, 0, question(wire_name("deb.debian.org"), type_a)), names.lookup(), nullptr);
    CHECK(without_rd.substr(0, 4) == bytes({0, 7, 0x80, 0x00}));
}

TEST_CASE("AAAA of a name that exists is NOERROR with no answer", "[dns]") {
    Names names;
    const std::string asked_question = question(wire_name("deb.debian.org"), type_aaaa);
    std::optional<DnsQuestion> asked;
    CHECK(dns_response(message(0xABCD, flag_rd, asked_question), names.lookup(), &asked) ==
          bytes({0xAB, 0xCD, 0x81, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}) + asked_question);
    REQUIRE(asked.has_value());
    CHECK(asked->type == type_aaaa);
    CHECK(names.lookups == 1);
}

TEST_CASE("a name the lookup does not give is NXDOMAIN", "[dns]") {
    Names names;
    const std::string asked_question = question(wire_name("evil.example"), type_a);
    std::optional<DnsQuestion> asked;
    CHECK(dns_response(message(0x0102, flag_rd, asked_question), names.lookup(), &asked) ==
          bytes({0x01, 0x02, 0x81, 0x03, 0, 1, 0, 0, 0, 0, 0, 0}) + asked_question);
    REQUIRE(asked.has_value());
    CHECK(asked->name == "evil.example");
}

TEST_CASE("malformed queries get FORMERR without a question, and no lookup", "[dns]") {
    Names names;
    const std::string formerr = bare_header(0x4242, 0x8101);
    const auto check_formerr = [&](const std::string& query) {
        std::optional<DnsQuestion> asked = DnsQuestion{"stale", 1};
        CHECK(dns_response(query, names.lookup(), &asked) == formerr);
        CHECK_FALSE(asked.has_value());
        CHECK_FALSE(parse_dns_query(query).has_value());
    };

    SECTION("a compression pointer in the question") {
        check_formerr(message(0x4242, flag_rd, question(bytes({0xC0, 0x0C}), type_a)));
        check_formerr(message(0x4242, flag_rd, question("\x03www" + bytes({0xC0, 0x0C}), type_a)));
    }
    SECTION("a label longer than 63 bytes, and the extended label types") {
        check_formerr(message(0x4242, flag_rd, question(wire_name(std::string(64, 'a')), type_a)));
        check_formerr(message(0x4242, flag_rd, question(bytes({0x80, 0}), type_a)));
    }
    SECTION("a name longer than 253 characters") {
        const std::string label(63, 'a');
        const std::string longest = label + "." + label + "." + label + "." + std::string(61, 'b');
        REQUIRE(longest.size() == 253);
        const auto parsed = parse_dns_query(a_query(1, longest));
        REQUIRE(parsed.has_value());
        CHECK(parsed->name == longest);
        check_formerr(message(0x4242, flag_rd, question(wire_name(longest + "b"), type_a)));
    }
    SECTION("bytes outside [a-z0-9_-] in a label") {
        for (const std::string& label :
             {std::string("a.b"), std::string("a b"), std::string("a\0b", 3), std::string("a\nb"),
              std::string("caf\xC3\xA9")}) {
            INFO(label);
            check_formerr(message(
                0x4242, flag_rd, question(static_cast<char>(label.size()) + label + '\0', type_a)));
        }
    }
    SECTION("a truncated message, cut anywhere after the header") {
        const std::string whole =
            message(0x4242, flag_rd, question(wire_name("deb.debian.org"), 1));
        for (std::size_t size = 12; size < whole.size(); ++size) {
            INFO(size);
            check_formerr(whole.substr(0, size));
        }
    }
    SECTION("two questions") {
        const std::string one = question(wire_name("deb.debian.org"), type_a);
        check_formerr(message(0x4242, flag_rd, one + one, 2));
        check_formerr(message(0x4242, flag_rd, "", 0));
    }
    SECTION("a response instead of a query") {
        check_formerr(message(0x4242, 0x8000 | flag_rd, question(wire_name("deb.debian.org"), 1)));
    }
    SECTION("bytes after the question with no additional record") {
        check_formerr(message(0x4242, flag_rd, question(wire_name("deb.debian.org"), 1) + "x"));
    }
    SECTION("more than 512 bytes") {
        check_formerr(message(0x4242, flag_rd,
                              question(wire_name("deb.debian.org"), 1) + std::string(600, '\0'), 1,
                              1));
    }
    CHECK(names.lookups == 0);
}

TEST_CASE("less than a header gets no response at all", "[dns]") {
    Names names;
    const std::string header = message(1, flag_rd, "");
    for (std::size_t size = 0; size < 12; ++size) {
        std::optional<DnsQuestion> asked = DnsQuestion{"stale", 1};
        CHECK(dns_response(header.substr(0, size), names.lookup(), &asked).empty());
        CHECK_FALSE(asked.has_value());
    }
}

TEST_CASE("another class or opcode is REFUSED", "[dns]") {
    Names names;
    std::optional<DnsQuestion> asked;

    // CHAOS class: the question is echoed, nothing is looked up or reported as asked.
    const std::string chaos = question(wire_name("version.bind"), 16, class_chaos);
    CHECK(dns_response(message(9, flag_rd, chaos), names.lookup(), &asked) ==
          bytes({0, 9, 0x81, 0x05, 0, 1, 0, 0, 0, 0, 0, 0}) + chaos);
    CHECK_FALSE(asked.has_value());

    // STATUS (opcode 2): the opcode is copied into the answer, no question is read.
    const std::string status = message(10, 0x1000, question(wire_name("deb.debian.org"), type_a));
    CHECK(dns_response(status, names.lookup(), &asked) == bare_header(10, 0x9005));
    CHECK_FALSE(asked.has_value());
    CHECK(names.lookups == 0);
}

TEST_CASE("one EDNS record after the question is ignored", "[dns]") {
    Names names;
    const std::string asked_question = question(wire_name("deb.debian.org"), type_a);
    const std::string opt = bytes({0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0}); // root, OPT, 1232
    const std::string response =
        dns_response(message(3, flag_rd, asked_question + opt, 1, 1), names.lookup(), nullptr);
    CHECK(response.substr(0, 12) == bytes({0, 3, 0x81, 0x00, 0, 1, 0, 1, 0, 0, 0, 0}));
    CHECK(response.ends_with(bytes({192, 0, 2, 10})));
    CHECK_FALSE(parse_dns_query(message(3, flag_rd, asked_question + opt, 1, 2)).has_value());
}

TEST_CASE("a connection answers pipelined queries and closes on an oversized length", "[dns]") {
    const std::string first = a_query(1, "deb.debian.org");
    const std::string second = a_query(2, "DEB.debian.org", type_aaaa);
    // A long idle timeout: the close must come from the length, not from waiting for its bytes.
    const Served served = serve(length_prefixed(first) + length_prefixed(second) +
                                    bytes({0xFF, 0xFF}) + std::string(100, 'x'),
                                30s);
    CHECK(served.took < 3s);

    Names names;
    const std::string expected = length_prefixed(dns_response(first, names.lookup(), nullptr)) +
                                 length_prefixed(dns_response(second, names.lookup(), nullptr));
    CHECK(served.output == expected);
    // 12 header + 20 question + 16 answer bytes, then the first ID.
    CHECK(served.output.substr(0, 4) == bytes({0, 48, 0, 1}));
    REQUIRE(served.recorded.size() == 2);
    CHECK(served.recorded[0].name == "deb.debian.org");
    CHECK(served.recorded[0].type == type_a);
    CHECK(served.recorded[1].name == "deb.debian.org");
    CHECK(served.recorded[1].type == type_aaaa);
}

TEST_CASE("a length of 512 is read and answered, 513 closes the connection at once", "[dns]") {
    const std::string largest = message(8, flag_rd, std::string(500, 'x'), 0);
    REQUIRE(largest.size() == max_dns_query_size);
    const Served served =
        serve(length_prefixed(largest) + u16(static_cast<std::uint16_t>(max_dns_query_size + 1)) +
                  std::string(513, 'x'),
              30s);
    CHECK(served.output == length_prefixed(bare_header(8, 0x8101)));
    CHECK(served.took < 3s);
}

TEST_CASE("a connection records only parsed questions and closes on a headerless message",
          "[dns]") {
    const std::string chaos =
        message(5, flag_rd, question(wire_name("version.bind"), 16, class_chaos));
    const Served served = serve(length_prefixed(chaos) + length_prefixed("short") +
                                length_prefixed(a_query(6, "deb.debian.org")));
    Names names;
    CHECK(served.output == length_prefixed(dns_response(chaos, names.lookup(), nullptr)));
    CHECK(served.recorded.empty());
}

TEST_CASE("a connection stops after max_dns_queries_per_connection queries", "[dns]") {
    std::string input;
    for (std::size_t id = 0; id <= max_dns_queries_per_connection; ++id) {
        input += length_prefixed(a_query(static_cast<std::uint16_t>(id), "deb.debian.org"));
    }
    const Served served = serve(input);
    const std::size_t framed_answer_size = 2 + 48;
    CHECK(served.output.size() == max_dns_queries_per_connection * framed_answer_size);
    CHECK(served.recorded.size() == max_dns_queries_per_connection);
}

TEST_CASE("a connection ends when the client is silent or the stop event fires", "[dns]") {
    SECTION("silent for the idle timeout") {
        const Served served = serve("", 50ms);
        CHECK(served.output.empty());
        CHECK(served.took < 3s);
    }
    SECTION("half a message, then silence") {
        const Served served = serve(bytes({0, 30, 0, 1}), 50ms);
        CHECK(served.output.empty());
        CHECK(served.took < 3s);
    }
    SECTION("the stop event, even with a query waiting") {
        const Served served = serve(length_prefixed(a_query(1, "deb.debian.org")), 60s, true);
        CHECK(served.output.empty());
        CHECK(served.recorded.empty());
        CHECK(served.took < 3s);
    }
}

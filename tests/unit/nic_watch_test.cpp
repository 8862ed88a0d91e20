#include "gateway/nic_watch.hpp"
#include "temporary_directory.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <array>
#include <atomic>
#include <cstring>
#include <fstream>
#include <sys/stat.h>

using namespace contractor;
using namespace contractor::gateway;

namespace {

void put16(std::string& out, std::uint16_t value) {
    out += static_cast<char>(value >> 8);
    out += static_cast<char>(value & 0xff);
}

std::string ethernet(std::uint16_t type, const std::string& payload) {
    std::string frame(12, '\x52'); // addresses: not looked at
    put16(frame, type);
    return frame + payload;
}

// An IPv4 header (no options) to `destination`, carrying `protocol` with `payload`.
std::string ipv4(const char* destination, std::uint8_t protocol, const std::string& payload,
                 std::uint16_t fragment = 0) {
    std::string header(20, '\0');
    header[0] = 0x45;
    header[2] = static_cast<char>((20 + payload.size()) >> 8);
    header[3] = static_cast<char>((20 + payload.size()) & 0xff);
    header[6] = static_cast<char>(fragment >> 8);
    header[7] = static_cast<char>(fragment & 0xff);
    header[8] = 64;
    header[9] = static_cast<char>(protocol);
    ::inet_pton(AF_INET, "10.0.2.15", header.data() + 12);
    ::inet_pton(AF_INET, destination, header.data() + 16);
    return ethernet(0x0800, header + payload);
}

std::string ipv6(const char* destination, std::uint8_t next, const std::string& payload) {
    std::string header(40, '\0');
    header[0] = 0x60;
    header[4] = static_cast<char>(payload.size() >> 8);
    header[5] = static_cast<char>(payload.size() & 0xff);
    header[6] = static_cast<char>(next);
    header[7] = 64;
    ::inet_pton(AF_INET6, "fec0::5054:ff:fe12:3456", header.data() + 8);
    ::inet_pton(AF_INET6, destination, header.data() + 24);
    return ethernet(0x86dd, header + payload);
}

std::string tcp(std::uint16_t source, std::uint16_t destination, std::uint8_t flags) {
    std::string segment;
    put16(segment, source);
    put16(segment, destination);
    segment += std::string(8, '\0');
    segment += static_cast<char>(0x50);
    segment += static_cast<char>(flags);
    segment += std::string(6, '\0');
    return segment;
}

std::string udp(std::uint16_t destination, const std::string& payload) {
    std::string datagram;
    put16(datagram, 40000);
    put16(datagram, destination);
    put16(datagram, static_cast<std::uint16_t>(8 + payload.size()));
    put16(datagram, 0);
    return datagram + payload;
}

// A DNS query for `name` (type A), as glibc sends it.
std::string dns_query(const std::string& name) {
    std::string message = std::string("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", 12);
    std::size_t start = 0;
    while (start <= name.size()) {
        const std::size_t dot = std::min(name.find('.', start), name.size());
        message += static_cast<char>(dot - start);
        message += name.substr(start, dot - start);
        start = dot + 1;
    }
    message += std::string("\x00\x00\x01\x00\x01", 5);
    return message;
}

std::string pcap_header() {
    std::string header(24, '\0');
    const std::array<std::uint32_t, 6> fields = {0xa1b2c3d4, 0x00040002, 0, 0, 512, 1};
    std::memcpy(header.data(), fields.data(), 4);
    std::memcpy(header.data() + 4, &fields[1], 4);
    std::memcpy(header.data() + 16, &fields[4], 4);
    std::memcpy(header.data() + 20, &fields[5], 4);
    return header;
}

std::string pcap_record(const std::string& frame) {
    std::string record(16, '\0');
    const auto length = static_cast<std::uint32_t>(frame.size());
    std::memcpy(record.data() + 8, &length, 4);
    std::memcpy(record.data() + 12, &length, 4);
    return record + frame;
}

void append(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << bytes;
}

} // namespace

TEST_CASE("a frame's attempt", "[nic]") {
    SECTION("a TCP SYN to any address is an attempt") {
        const auto packet = attempt_in_frame(ipv4("10.0.2.2", 6, tcp(41000, 8080, 0x02)));
        REQUIRE(packet);
        CHECK(packet->address == "10.0.2.2");
        CHECK(packet->port == 8080);
        CHECK(packet->transport == Transport::tcp);
        CHECK_FALSE(packet->dns_name);
    }
    SECTION("the SSH connection's own segments are not") {
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.2", 6, tcp(22, 41000, 0x12)))); // SYN+ACK
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.2", 6, tcp(22, 41000, 0x10))));
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.2", 6, tcp(41000, 80, 0x04)))); // RST
    }
    SECTION("a datagram is an attempt, a DNS query names its question") {
        const auto other = attempt_in_frame(ipv4("192.0.2.7", 17, udp(9999, "x")));
        REQUIRE(other);
        CHECK(other->transport == Transport::udp);
        CHECK(other->port == 9999);
        const auto dns = attempt_in_frame(ipv4("10.0.2.3", 17, udp(53, dns_query("Example.COM"))));
        REQUIRE(dns);
        CHECK(dns->port == 53);
        REQUIRE(dns->dns_name);
        CHECK(*dns->dns_name == "example.com");
        // Not a query: a datagram to port 53 all the same, without a name.
        const auto junk = attempt_in_frame(ipv4("10.0.2.3", 17, udp(53, "not dns")));
        REQUIRE(junk);
        CHECK_FALSE(junk->dns_name);
    }
    SECTION("broadcast, multicast and DHCP are not") {
        CHECK_FALSE(attempt_in_frame(ipv4("255.255.255.255", 17, udp(9999, "x"))));
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.255", 17, udp(9999, "x"))));
        CHECK_FALSE(attempt_in_frame(ipv4("224.0.0.251", 17, udp(5353, "x"))));
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.2", 17, udp(67, "x"))));
        CHECK_FALSE(attempt_in_frame(ipv6("ff02::2", 58, std::string("\x85\x00\x00\x00", 4))));
    }
    SECTION("a ping is, its answer is not") {
        const auto ping = attempt_in_frame(ipv4("198.51.100.1", 1, std::string("\x08\x00", 2)));
        REQUIRE(ping);
        CHECK(ping->transport == Transport::icmp);
        CHECK_FALSE(attempt_in_frame(ipv4("198.51.100.1", 1, std::string("\x00\x00", 2))));
        CHECK(attempt_in_frame(ipv6("2001:db8::1", 58, std::string("\x80\x00", 2))));
    }
    SECTION("IPv6, also behind an options header") {
        const auto packet = attempt_in_frame(ipv6("2001:db8::1", 6, tcp(41000, 443, 0x02)));
        REQUIRE(packet);
        CHECK(packet->address == "2001:db8::1");
        CHECK(packet->port == 443);
        const std::string options = std::string("\x06\x00", 2) + std::string(6, '\0');
        const auto behind = attempt_in_frame(ipv6("2001:db8::2", 60, options + tcp(1, 22, 0x02)));
        REQUIRE(behind);
        CHECK(behind->address == "2001:db8::2");
        CHECK(behind->port == 22);
    }
    SECTION("ARP, later fragments and cut frames are not, and never read past the end") {
        CHECK_FALSE(attempt_in_frame(ethernet(0x0806, std::string(28, '\0'))));
        CHECK_FALSE(attempt_in_frame(ipv4("10.0.2.2", 6, tcp(41000, 80, 0x02), 0x0010)));
        const std::string whole = ipv4("10.0.2.2", 6, tcp(41000, 80, 0x02));
        for (std::size_t size = 0; size < whole.size(); ++size) {
            const auto packet = attempt_in_frame(whole.substr(0, size));
            CHECK((!packet || packet->port == 80));
        }
        CHECK_FALSE(attempt_in_frame(whole.substr(0, 14 + 20 + 13)));
    }
}

TEST_CASE("the pcap stream, fed a byte at a time", "[nic]") {
    const std::string frame = ipv4("10.0.2.2", 6, tcp(41000, 8080, 0x02));
    const std::string stream = pcap_header() + pcap_record(frame) + pcap_record("short");
    PcapStream parser;
    std::vector<std::string> frames;
    for (const char byte : stream) {
        parser.feed(std::string_view(&byte, 1),
                    [&frames](std::string_view got) { frames.emplace_back(got); });
    }
    REQUIRE(frames.size() == 2);
    CHECK(frames[0] == frame);
    CHECK(frames[1] == "short");

    PcapStream wrong;
    CHECK_THROWS_AS(wrong.feed(std::string(24, 'x'), [](std::string_view) {}), InfrastructureError);
    PcapStream huge;
    std::string record(16, '\0');
    const std::uint32_t length = max_pcap_record + 1;
    std::memcpy(record.data() + 8, &length, 4);
    CHECK_THROWS_AS(huge.feed(pcap_header() + record, [](std::string_view) {}),
                    InfrastructureError);
}

TEST_CASE("the watch counts what each phase's frames tried", "[nic]") {
    test::TemporaryDirectory folder;
    const auto file = folder.path() / "nic.pcap";
    append(file, pcap_header());
    // Before the first phase: the image's own start-up, not counted.
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(41000, 1, 0x02))));
    std::atomic<int> seen{0};
    NicWatch watch(
        file, [&seen](const DirectAttempt&) { ++seen; }, [](const std::string&) {});
    watch.begin_phase("provision");
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(41000, 8080, 0x02))));
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(41001, 8080, 0x02))));
    // Resent: the same connection.
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(41001, 8080, 0x02))));
    watch.begin_phase("build");
    append(file, pcap_record(ipv4("10.0.2.3", 17, udp(53, dns_query("example.org")))));
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(22, 41000, 0x12))));
    append(file, pcap_record(ipv4("10.0.2.2", 6, tcp(41002, 8080, 0x02))));

    const NicUsage usage = watch.usage();
    CHECK(usage.blocked == 3);
    CHECK(seen == 3);
    REQUIRE(usage.attempts.size() == 2);
    CHECK(usage.attempts[0].attempt.phase == "build");
    CHECK(usage.attempts[0].count == 1);
    CHECK(usage.attempts[1].attempt.phase == "provision");
    CHECK(usage.attempts[1].count == 2);
    CHECK(usage.attempts[1].attempt.port == 8080);
    REQUIRE(usage.names.size() == 1);
    CHECK(usage.names[0].name == "example.org");
    CHECK(usage.names[0].phase == "build");
    CHECK_FALSE(usage.names[0].answered);
    CHECK(usage.problem.empty());
}

TEST_CASE("the watch is bounded however much the worker sends", "[nic]") {
    test::TemporaryDirectory folder;
    const auto file = folder.path() / "nic.pcap";
    append(file, pcap_header());
    NicWatch watch(file, {}, {});
    watch.begin_phase("build");
    // 300 destinations, then 3 MiB of one attempt: 200 listed, the rest counted; the blocks
    // read are given back.
    std::string batch;
    for (int port = 1; port <= 300; ++port) {
        batch += pcap_record(ipv4("10.0.2.2", 6, tcp(40000, static_cast<std::uint16_t>(port), 2)));
    }
    append(file, batch);
    const std::string one = pcap_record(ipv4("10.0.2.2", 17, udp(1, "x")));
    std::string flood;
    while (flood.size() < (3U << 20)) {
        flood += one;
    }
    append(file, flood);
    const NicUsage usage = watch.usage();
    CHECK(usage.attempts.size() == max_listed_attempts);
    // Attempts to destinations beyond the listed ones are counted, each of them.
    CHECK(usage.attempts_not_listed == 300 - max_listed_attempts + flood.size() / one.size());
    CHECK(usage.blocked == 300 + flood.size() / one.size());
    struct stat status {};
    REQUIRE(::stat(file.c_str(), &status) == 0);
    CHECK(static_cast<std::uint64_t>(status.st_size) > (3U << 20));
    CHECK(static_cast<std::uint64_t>(status.st_blocks) * 512 < (1U << 20));
}

TEST_CASE("an unreadable record stops the watch and says so", "[nic]") {
    test::TemporaryDirectory folder;
    const auto file = folder.path() / "nic.pcap";
    append(file, std::string(24, 'x'));
    std::string why;
    NicWatch watch(file, {}, [&why](const std::string& message) { why = message; });
    const NicUsage usage = watch.usage();
    CHECK_THAT(usage.problem, Catch::Matchers::Contains("not a pcap stream"));
    CHECK_THAT(why, Catch::Matchers::Contains("not a pcap stream"));
    CHECK_THROWS_AS(NicWatch(folder.path() / "missing", {}, {}), InfrastructureError);
}

#pragma once

#include "gateway/gateway.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// What the worker sends past the gateway. The worker's network card leads nowhere (QEMU user
// networking with restrict=on), so a tool that ignores the proxy, or a phase without rules,
// fails inside the worker without the gateway seeing it. QEMU copies the first bytes of every
// frame the card sends into a file of the run folder (its filter-dump object, a pcap stream);
// this reads that file while the worker runs. A frame that opens a TCP connection, sends a
// datagram or a ping is an attempt: nothing of it got out, and it is recorded as refused. A
// DNS question in a datagram is recorded as a name. QEMU writes the file; the guest chooses
// only the bytes of its frames, read within each record's captured length.
namespace contractor::gateway {

enum class Transport { tcp, udp, icmp };
std::string_view to_string(Transport transport);

// One frame that tried to reach something.
struct NicPacket {
    std::string address;    // the destination, as inet_ntop writes it
    std::uint16_t port = 0; // 0 for icmp
    Transport transport = Transport::tcp;
    std::uint16_t source_port = 0;       // tcp and udp: tells a resent SYN from a new connection
    std::optional<std::string> dns_name; // the question of a DNS query to port 53
};

// The attempt a frame makes, if it makes one: a TCP SYN without ACK, a UDP datagram or an
// ICMP/ICMPv6 echo request, to a unicast address. Everything else is none: ARP, answers,
// the segments of the SSH connection forwarded to the worker (they come from its port 22 and
// carry ACK), multicast, broadcast, neighbour discovery, later IPv4 fragments and DHCP (the
// card's own set-up, answered by QEMU). A UDP datagram to port 53 whose payload is a query as
// parse_dns_query accepts it carries its question's name.
std::optional<NicPacket> attempt_in_frame(std::string_view frame);

// The largest captured frame a pcap record may hold. QEMU writes at most the snapshot length
// it was given (virt::nic_snapshot_length).
inline constexpr std::uint32_t max_pcap_record = 65536;

// A pcap stream (the classic format, either byte order, micro- or nanosecond stamps), fed in
// pieces as it is read.
class PcapStream {
public:
    // Appends `bytes` and calls `frame` with the captured bytes of every record now complete.
    // Throws InfrastructureError for a stream that is not pcap or a record longer than
    // max_pcap_record.
    void feed(std::string_view bytes, const std::function<void(std::string_view)>& frame);

private:
    std::string pending_;
    bool header_read_ = false;
    bool swapped_ = false;
};

// An attempt seen at the card, tallied.
struct DirectAttempt {
    std::string address;
    std::uint16_t port = 0;
    Transport transport = Transport::tcp;
    std::string phase;

    bool operator<(const DirectAttempt& other) const;
};

struct DirectTally {
    DirectAttempt attempt;
    std::uint64_t count = 0;
};

// What the card sent so far, within the same bounds as the gateway's record.
struct NicUsage {
    std::uint64_t blocked = 0;         // every attempt
    std::vector<DirectTally> attempts; // the first max_listed_attempts distinct ones
    std::uint64_t attempts_not_listed = 0;
    std::vector<NameTally> names; // questions sent past the gateway (never answered)
    std::uint64_t names_not_listed = 0;
    std::string problem; // why the record could not be read to its end; empty when it could
};

// Follows one worker's frame file from its start until destroyed. A TCP connection counts
// once, however often its SYN is resent.
class NicWatch {
public:
    // Called on the watch's thread for each attempt (not for names), as it is read.
    using OnAttempt = std::function<void(const DirectAttempt&)>;
    // Called once if the record turns out unreadable: what follows can no longer be seen.
    using OnBroken = std::function<void(const std::string& why)>;

    // Opens `file` (made before QEMU started; QEMU writes it) and starts reading. Frames
    // read before the first begin_phase are the image's own start-up and are not counted.
    // Throws InfrastructureError when the file cannot be opened.
    NicWatch(const std::filesystem::path& file, OnAttempt on_attempt, OnBroken on_broken);
    // Stops reading and joins the thread.
    ~NicWatch();
    NicWatch(const NicWatch&) = delete;
    NicWatch& operator=(const NicWatch&) = delete;

    // Reads everything the file holds now under the previous phase, then counts what
    // follows under `phase`.
    void begin_phase(std::string phase);
    // Reads everything the file holds now; a snapshot of the counts.
    NicUsage usage();

private:
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace contractor::gateway

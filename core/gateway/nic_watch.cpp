#include "gateway/nic_watch.hpp"

#include "gateway/dns_responder.hpp"
#include "gateway/socket.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>
#include <unistd.h>

namespace contractor::gateway {

namespace {

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86dd;
constexpr std::uint16_t ethertype_vlan = 0x8100;
constexpr std::uint8_t ip_tcp = 6;
constexpr std::uint8_t ip_udp = 17;
constexpr std::uint8_t ip_icmp = 1;
constexpr std::uint8_t ip_icmpv6 = 58;
constexpr std::uint8_t tcp_syn = 0x02;
constexpr std::uint8_t tcp_ack = 0x10;
constexpr std::uint16_t dns_port = 53;
constexpr std::uint16_t dhcp_server_port = 67;
constexpr std::uint16_t dhcpv6_server_port = 547;

std::uint16_t be16(std::string_view bytes, std::size_t at) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[at]) << 8) |
                                      static_cast<unsigned char>(bytes[at + 1]));
}

std::uint32_t read32(std::string_view bytes, std::size_t at, bool swapped) {
    std::uint32_t value = 0;
    std::memcpy(&value, bytes.data() + at, sizeof value);
    return swapped ? __builtin_bswap32(value) : value;
}

// The attempt of the transport header at `payload` (its protocol `next`), to `address`.
std::optional<NicPacket> transport_attempt(std::uint8_t next, std::string_view payload,
                                           std::string address) {
    NicPacket packet;
    packet.address = std::move(address);
    if (next == ip_tcp) {
        if (payload.size() < 14 || (payload[13] & tcp_syn) == 0 || (payload[13] & tcp_ack) != 0) {
            return std::nullopt;
        }
        packet.transport = Transport::tcp;
        packet.source_port = be16(payload, 0);
        packet.port = be16(payload, 2);
        return packet;
    }
    if (next == ip_udp) {
        if (payload.size() < 8) {
            return std::nullopt;
        }
        packet.transport = Transport::udp;
        packet.source_port = be16(payload, 0);
        packet.port = be16(payload, 2);
        if (packet.port == dhcp_server_port || packet.port == dhcpv6_server_port) {
            return std::nullopt;
        }
        if (packet.port == dns_port) {
            if (const auto question = parse_dns_query(payload.substr(8))) {
                packet.dns_name = question->name;
            }
        }
        return packet;
    }
    // ICMP echo request is type 8, ICMPv6's 128.
    if ((next == ip_icmp && !payload.empty() && static_cast<unsigned char>(payload[0]) == 8) ||
        (next == ip_icmpv6 && !payload.empty() && static_cast<unsigned char>(payload[0]) == 128)) {
        packet.transport = Transport::icmp;
        return packet;
    }
    return std::nullopt;
}

std::optional<NicPacket> ipv4_attempt(std::string_view ip) {
    if (ip.size() < 20 || (static_cast<unsigned char>(ip[0]) >> 4) != 4) {
        return std::nullopt;
    }
    const std::size_t header = (static_cast<unsigned char>(ip[0]) & 0x0f) * 4U;
    // A later fragment has no transport header; the first one was looked at.
    const bool later_fragment = (be16(ip, 6) & 0x1fff) != 0;
    if (header < 20 || ip.size() < header || later_fragment) {
        return std::nullopt;
    }
    const auto first = static_cast<unsigned char>(ip[16]);
    const auto last = static_cast<unsigned char>(ip[19]);
    // Multicast, the limited broadcast and the guest network's own broadcast go nowhere.
    if (first >= 224 || (first == 10 && ip[17] == 0 && ip[18] == 2 && last == 255)) {
        return std::nullopt;
    }
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, ip.data() + 16, text, sizeof text);
    return transport_attempt(static_cast<std::uint8_t>(ip[9]), ip.substr(header), text);
}

std::optional<NicPacket> ipv6_attempt(std::string_view ip) {
    if (ip.size() < 40 || (static_cast<unsigned char>(ip[0]) >> 4) != 6) {
        return std::nullopt;
    }
    if (static_cast<unsigned char>(ip[24]) == 0xff) {
        return std::nullopt; // multicast
    }
    auto next = static_cast<std::uint8_t>(ip[6]);
    std::size_t at = 40;
    // Hop-by-hop, routing and destination options: skip to the transport header (a few at
    // most; a fragment header or a longer chain is not looked into).
    for (int hops = 0; hops < 4 && (next == 0 || next == 43 || next == 60); ++hops) {
        if (ip.size() < at + 2) {
            return std::nullopt;
        }
        next = static_cast<std::uint8_t>(ip[at]);
        at += (static_cast<unsigned char>(ip[at + 1]) + 1U) * 8U;
    }
    if (ip.size() < at) {
        return std::nullopt;
    }
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, ip.data() + 24, text, sizeof text);
    return transport_attempt(next, ip.substr(at), text);
}

} // namespace

std::string_view to_string(Transport transport) {
    switch (transport) {
    case Transport::tcp:
        return "tcp";
    case Transport::udp:
        return "udp";
    case Transport::icmp:
        return "icmp";
    }
    return "tcp";
}

std::optional<NicPacket> attempt_in_frame(std::string_view frame) {
    if (frame.size() < 14) {
        return std::nullopt;
    }
    std::size_t at = 12;
    std::uint16_t type = be16(frame, at);
    if (type == ethertype_vlan && frame.size() >= 18) {
        at += 4;
        type = be16(frame, at);
    }
    const std::string_view ip = frame.substr(at + 2);
    if (type == ethertype_ipv4) {
        return ipv4_attempt(ip);
    }
    if (type == ethertype_ipv6) {
        return ipv6_attempt(ip);
    }
    return std::nullopt;
}

void PcapStream::feed(std::string_view bytes, const std::function<void(std::string_view)>& frame) {
    pending_.append(bytes);
    std::size_t at = 0;
    if (!header_read_) {
        if (pending_.size() < 24) {
            return;
        }
        const std::uint32_t magic = read32(pending_, 0, false);
        if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
            swapped_ = false;
        } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
            swapped_ = true;
        } else {
            throw InfrastructureError("the worker's network card record is not a pcap stream");
        }
        header_read_ = true;
        at = 24;
    }
    // Each record: seconds, sub-seconds, captured length, original length, then the frame.
    while (pending_.size() - at >= 16) {
        const std::uint32_t captured = read32(pending_, at + 8, swapped_);
        if (captured > max_pcap_record) {
            throw InfrastructureError("the worker's network card record has a frame of " +
                                      std::to_string(captured) + " bytes");
        }
        if (pending_.size() - at - 16 < captured) {
            break;
        }
        frame(std::string_view(pending_).substr(at + 16, captured));
        at += 16 + captured;
    }
    pending_.erase(0, at);
}

bool DirectAttempt::operator<(const DirectAttempt& other) const {
    return std::tie(address, port, transport, phase) <
           std::tie(other.address, other.port, other.transport, other.phase);
}

struct NicWatch::State {
    Fd file;
    OnAttempt on_attempt;
    OnBroken on_broken;
    PcapStream stream;
    std::uint64_t offset = 0;   // read up to here
    std::uint64_t released = 0; // the file's blocks before this are given back
    std::optional<std::string> phase;
    std::string broken;                             // why the file can no longer be read
    std::string chunk = std::string(1 << 20, '\0'); // one read's bytes

    std::map<DirectAttempt, std::uint64_t> attempts;
    std::uint64_t blocked = 0;
    std::uint64_t attempts_not_listed = 0;
    std::map<std::pair<std::string, std::string>, std::uint64_t> names;
    std::uint64_t names_not_listed = 0;
    // The last SYNs seen (destination, its port, the source port): a resent one is the same
    // connection. A connection is resent for about two minutes, while a few others start.
    std::deque<std::tuple<std::string, std::uint16_t, std::uint16_t>> recent_syns;

    std::mutex mutex; // guards all of the above (the reader thread and the callers)
    std::condition_variable stop_signal;
    bool stopping = false;
    std::thread reader;

    void count(const NicPacket& packet) {
        if (!phase) {
            return;
        }
        if (packet.dns_name) {
            const auto key = std::make_pair(*packet.dns_name, *phase);
            if (names.contains(key) || names.size() < max_listed_names) {
                ++names[key];
            } else {
                ++names_not_listed;
            }
            return;
        }
        if (packet.transport == Transport::tcp) {
            auto key = std::make_tuple(packet.address, packet.port, packet.source_port);
            if (std::find(recent_syns.begin(), recent_syns.end(), key) != recent_syns.end()) {
                return;
            }
            recent_syns.push_back(std::move(key));
            if (recent_syns.size() > 256) {
                recent_syns.pop_front();
            }
        }
        ++blocked;
        DirectAttempt attempt{packet.address, packet.port, packet.transport, *phase};
        if (attempts.contains(attempt) || attempts.size() < max_listed_attempts) {
            ++attempts[attempt];
        } else {
            ++attempts_not_listed;
        }
        if (on_attempt) {
            on_attempt(attempt);
        }
    }

    // Reads what the file holds now. Called with the mutex held.
    void read_available() {
        if (!broken.empty()) {
            return;
        }
        for (;;) {
            const ssize_t got =
                ::pread(file.get(), chunk.data(), chunk.size(), static_cast<off_t>(offset));
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got <= 0) {
                break;
            }
            offset += static_cast<std::uint64_t>(got);
            try {
                stream.feed(std::string_view(chunk.data(), static_cast<std::size_t>(got)),
                            [this](std::string_view frame) {
                                if (const auto packet = attempt_in_frame(frame)) {
                                    count(*packet);
                                }
                            });
            } catch (const Error& error) {
                broken = error.what();
                if (on_broken) {
                    on_broken(broken);
                }
                return;
            }
        }
        // The file only grows (QEMU appends a record per frame): what was read gives its
        // disk blocks back, so a flood of frames costs no more disk than is still unread.
        constexpr std::uint64_t block = 1 << 20;
        const std::uint64_t read_blocks = offset / block * block;
        if (read_blocks > released) {
            ::fallocate(file.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
                        static_cast<off_t>(read_blocks));
            released = read_blocks;
        }
    }

    void run() {
        std::unique_lock lock(mutex);
        while (!stopping) {
            read_available();
            // A tenth of a second: an attempt reaches the budget (and stops the build) within
            // about that, at the cost of one read of an unchanged file.
            stop_signal.wait_for(lock, std::chrono::milliseconds(100));
        }
    }
};

NicWatch::NicWatch(const std::filesystem::path& file, OnAttempt on_attempt, OnBroken on_broken)
    : state_(std::make_unique<State>()) {
    state_->file = Fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
    if (!state_->file.valid()) {
        throw InfrastructureError("cannot read the worker's network card record " + file.string() +
                                  ": " + std::strerror(errno));
    }
    state_->on_attempt = std::move(on_attempt);
    state_->on_broken = std::move(on_broken);
    state_->reader = std::thread([state = state_.get()] { state->run(); });
}

NicWatch::~NicWatch() {
    {
        const std::lock_guard lock(state_->mutex);
        state_->stopping = true;
    }
    state_->stop_signal.notify_all();
    state_->reader.join();
}

void NicWatch::begin_phase(std::string phase) {
    const std::lock_guard lock(state_->mutex);
    state_->read_available();
    state_->phase = std::move(phase);
}

NicUsage NicWatch::usage() {
    const std::lock_guard lock(state_->mutex);
    state_->read_available();
    NicUsage usage;
    usage.blocked = state_->blocked;
    for (const auto& [attempt, count] : state_->attempts) {
        usage.attempts.push_back({attempt, count});
    }
    usage.attempts_not_listed = state_->attempts_not_listed;
    for (const auto& [key, count] : state_->names) {
        usage.names.push_back({key.first, key.second, false, count});
    }
    usage.names_not_listed = state_->names_not_listed;
    usage.problem = state_->broken;
    return usage;
}

} // namespace contractor::gateway

#pragma once

#include "policy/network_rule.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The worker VM's only way out: listeners on the manager's loopback that the worker reaches
// through SSH forwards. An HTTP forward proxy (http, and https as CONNECT), one listener per
// `tcp` rule, and a DNS responder that answers only allowed names. Each applies the allowlist
// of the current phase, counts and paces what it relays, and records every attempt.
namespace contractor::gateway {

// One attempt, as recorded: where to, in which phase, and the gateway's answer.
struct Attempt {
    std::string host; // as the client named it, lower-case
    std::uint16_t port = 0;
    policy::Protocol protocol = policy::Protocol::http; // https for CONNECT
    std::string phase;                                  // the phase whose allowlist decided
    bool allowed = false;
    std::string refusal; // why it was refused, in words; empty when allowed

    bool operator<(const Attempt& other) const;
};

// Attempts alike (same fields), counted, with the bytes their connections moved.
struct AttemptTally {
    Attempt attempt;
    std::uint64_t count = 0;
    std::uint64_t bytes_up = 0;   // worker to destination
    std::uint64_t bytes_down = 0; // destination to worker
};

// A name the worker asked the DNS responder for, and how often.
struct NameTally {
    std::string name;
    std::string phase;
    bool answered = false; // false: it does not exist for the worker
    std::uint64_t count = 0;
};

// The most distinct attempts and names a report lists: a hostile build can try millions of
// host names; beyond these, attempts are only counted.
inline constexpr std::size_t max_listed_attempts = 200;
inline constexpr std::size_t max_listed_names = 200;

// What went through the gateway so far.
struct GatewayUsage {
    std::uint64_t bytes_up = 0;         // worker to destinations (after request heads)
    std::uint64_t bytes_down = 0;       // destinations to worker
    std::uint64_t allowed = 0;          // attempts allowed, all of them
    std::uint64_t blocked = 0;          // attempts refused, all of them
    std::vector<AttemptTally> attempts; // the first max_listed_attempts distinct ones
    std::uint64_t attempts_not_listed = 0;
    std::vector<NameTally> names; // the first max_listed_names distinct ones
    std::uint64_t names_not_listed = 0;
};

// How the gateway reaches allowed destinations and whom it tells.
struct GatewayOptions {
    // "http://HOST:PORT": every allowed http/https connection goes through this HTTP proxy
    // (absolute-form requests, CONNECT) instead of directly, e.g. to a local apt cache.
    std::optional<std::string> upstream_proxy;
    // Where host.contractor.internal leads, as the gateway reaches it: the loopback of the
    // machine that runs contractor ("127.0.0.1" when the gateway runs there, QEMU's "10.0.2.2"
    // inside the manager VM). Empty: the name leads nowhere.
    std::string contractor_host_address;
    // network-rate, bytes per second in each direction; 0: unpaced.
    std::uint64_t rate = 0;
    // network-transfer: called with the bytes about to be relayed (either direction); false
    // when the budget is spent, and the connection ends. Unset: unlimited.
    std::function<bool(std::uint64_t)> charge_transfer;
    // Called on the connection's thread for every refused attempt, as it happens.
    std::function<void(const Attempt&)> on_refused;
};

// A tcp rule's way in: the worker connects to `host`:`port`, which its /etc/hosts maps to
// `worker_address`, and an SSH forward carries it to `local_port` here.
struct TcpEndpoint {
    std::string host;
    std::uint16_t port = 0;
    std::string worker_address; // 127.77.0.N, one per host name
    std::uint16_t local_port = 0;
    policy::Phase phase = policy::Phase::provision; // the phase whose rule made it
};

class Gateway {
public:
    // Starts listening on free loopback ports, with the provision phase's allowlist. Throws
    // UsageError for a malformed upstream proxy, InfrastructureError when it cannot listen.
    Gateway(policy::EffectivePolicy policy, GatewayOptions options);
    // Stops accepting, ends open connections and joins every thread.
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // The loopback port of the HTTP proxy.
    std::uint16_t port() const;
    // The loopback port of the DNS responder (DNS over TCP).
    std::uint16_t dns_port() const;
    // One endpoint per host:port of every `tcp` rule, both phases.
    const std::vector<TcpEndpoint>& tcp_endpoints() const;

    // Ends the current phase: every connection opened so far is closed (whatever it was
    // doing), and `phase`'s allowlist decides from now on.
    void begin_phase(policy::Phase phase);
    // A consistent snapshot of the counts and attempts so far; safe from any thread.
    GatewayUsage usage() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Whether `rule` allows `protocol` to host:port. "*.x.org" matches subdomains of x.org but not
// x.org itself; host names compare case-insensitively, IP addresses by value.
bool rule_allows(const policy::NetworkRule& rule, std::string_view host, std::uint16_t port,
                 policy::Protocol protocol);

} // namespace contractor::gateway

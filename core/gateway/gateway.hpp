#pragma once

#include "policy/network_rule.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The worker VM's only way out: an HTTP forward proxy on the manager's loopback that applies
// the allowlist of the current phase, relays what it allows and records every attempt.
namespace contractor::gateway {

// One request or CONNECT the gateway was asked to make, allowed or not.
struct Attempt {
    std::string host; // as the client named it, lower-case
    std::uint16_t port = 0;
    policy::Protocol protocol = policy::Protocol::http; // http for requests, https for CONNECT
    bool allowed = false;
    std::string phase; // the phase whose allowlist decided
};

// What went through the gateway so far.
struct GatewayUsage {
    std::uint64_t bytes_up = 0;   // client to destination, after the request head
    std::uint64_t bytes_down = 0; // destination to client
    std::vector<Attempt> attempts;
};

// How the gateway reaches allowed destinations.
struct GatewayOptions {
    // "http://HOST:PORT": every allowed connection goes through this HTTP proxy (absolute-form
    // requests, CONNECT) instead of directly, e.g. to a local apt cache.
    std::optional<std::string> upstream_proxy;
    // Lower-case host name -> IP address, used instead of resolving the name.
    std::map<std::string, std::string> hosts_override;
};

// An HTTP forward proxy listening on 127.0.0.1, one thread per client connection.
class Gateway {
public:
    // Starts listening on a free loopback port with the allowlist of `phase`. Throws
    // UsageError for a malformed upstream proxy, InfrastructureError when it cannot listen.
    Gateway(std::vector<policy::EffectiveRule> rules_for_phase, std::string phase,
            GatewayOptions options = {});
    // Stops accepting, ends open connections and joins every thread.
    ~Gateway();
    Gateway(const Gateway&) = delete;
    Gateway& operator=(const Gateway&) = delete;

    // The loopback port the gateway listens on.
    std::uint16_t port() const;
    // Replaces the allowlist for new requests (e.g. provision -> build); open connections go on.
    void set_rules(std::vector<policy::EffectiveRule> rules, std::string phase);
    // A consistent snapshot of the byte counts and attempts so far; safe from any thread.
    GatewayUsage usage() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Whether `rule` allows `protocol` to host:port. "*.x.org" matches subdomains of x.org but not
// x.org itself; host names compare case-insensitively, IPv6 addresses by value.
bool rule_allows(const policy::NetworkRule& rule, std::string_view host, std::uint16_t port,
                 policy::Protocol protocol);

} // namespace contractor::gateway

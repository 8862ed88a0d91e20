#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// The network allowlist: which hosts a worker may reach, on which port, with which protocol.
// Rules come from the user's config (the base policy) and from the spec; the effective policy
// is their union, each rule tagged with where it came from, and is shown before a build runs.
namespace contractor::policy {

// How a connection is made. http and https go through the manager's proxy (https as CONNECT,
// so the proxy sees the host name but not the traffic); tcp is a plain forwarded port.
enum class Protocol { http, https, tcp };

// The build phases, each with its own policy: provisioning usually needs a package mirror, the
// build usually needs nothing.
enum class Phase { provision, build };

// Where a rule came from: contractor's built-in base policy, the user's config, or the spec.
enum class Origin { builtin, config, spec };

// The name of the host that means "the loopback of the machine running contractor", for a
// local package cache.
inline constexpr std::string_view contractor_host = "host.contractor.internal";

// One allowed destination.
struct NetworkRule {
    std::string host; // lower-case host name, "*.example.org", an IPv4 or IPv6 address
    std::uint16_t port = 0;
    Protocol protocol = Protocol::https;

    bool operator==(const NetworkRule&) const = default;
};

// A rule in the effective policy, with its origin.
struct EffectiveRule {
    NetworkRule rule;
    Origin origin;
};

// The rules a config or a spec asks for, per phase.
struct NetworkRules {
    std::vector<NetworkRule> provision;
    std::vector<NetworkRule> build;

    const std::vector<NetworkRule>& phase(Phase phase) const;
};

// The rules that apply, per phase.
struct EffectivePolicy {
    std::vector<EffectiveRule> provision;
    std::vector<EffectiveRule> build;

    const std::vector<EffectiveRule>& phase(Phase phase) const;
};

// The base policy when the user config does not set one: provisioning may reach Debian's
// mirrors (apt over http and https); the build may reach nothing.
EffectivePolicy builtin_base_policy();

// `rules` tagged with `origin`, without duplicates.
std::vector<EffectiveRule> tag_rules(const std::vector<NetworkRule>& rules, Origin origin);

// The effective policy: the base rules first, then every spec rule that the base does not
// already allow. Computed once, before the build starts; never changed while it runs.
EffectivePolicy merge_policy(const EffectivePolicy& base, const NetworkRules& requested);

std::string_view to_string(Protocol protocol);
std::string_view to_string(Phase phase);
std::string_view to_string(Origin origin);
std::optional<Protocol> protocol_from_string(std::string_view text);

// The port a protocol uses when a rule does not name one; nullopt for tcp, which must.
std::optional<std::uint16_t> default_port(Protocol protocol);

// Why `host` is not a valid rule host, or nullopt when it is. Accepts DNS names (with an
// optional leading "*." wildcard for any subdomain), IPv4 and IPv6 addresses, and
// host.contractor.internal.
std::optional<std::string> host_problem(std::string_view host);

} // namespace contractor::policy

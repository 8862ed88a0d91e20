#include "policy/network_rule.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>

namespace contractor::policy {

const std::vector<NetworkRule>& NetworkRules::phase(Phase which) const {
    return which == Phase::provision ? provision : build;
}

const std::vector<EffectiveRule>& EffectivePolicy::phase(Phase which) const {
    return which == Phase::provision ? provision : build;
}

namespace {

bool contains(const std::vector<EffectiveRule>& rules, const NetworkRule& rule) {
    return std::any_of(rules.begin(), rules.end(),
                       [&](const EffectiveRule& existing) { return existing.rule == rule; });
}

std::vector<EffectiveRule> merge_phase(std::vector<EffectiveRule> base,
                                       const std::vector<NetworkRule>& requested) {
    for (const auto& rule : requested) {
        if (!contains(base, rule)) {
            base.push_back({rule, Origin::spec});
        }
    }
    return base;
}

} // namespace

std::vector<EffectiveRule> tag_rules(const std::vector<NetworkRule>& rules, Origin origin) {
    std::vector<EffectiveRule> out;
    for (const auto& rule : rules) {
        if (!contains(out, rule)) {
            out.push_back({rule, origin});
        }
    }
    return out;
}

EffectivePolicy builtin_base_policy() {
    const std::vector<NetworkRule> debian_mirrors = {
        {"deb.debian.org", 80, Protocol::http},
        {"deb.debian.org", 443, Protocol::https},
        {"security.debian.org", 80, Protocol::http},
    };
    return {tag_rules(debian_mirrors, Origin::builtin), {}};
}

EffectivePolicy merge_policy(const EffectivePolicy& base, const NetworkRules& requested) {
    return {merge_phase(base.provision, requested.provision),
            merge_phase(base.build, requested.build)};
}

std::string_view to_string(Protocol protocol) {
    switch (protocol) {
    case Protocol::http:
        return "http";
    case Protocol::https:
        return "https";
    case Protocol::tcp:
        return "tcp";
    }
    return "?";
}

std::string_view to_string(Phase phase) {
    return phase == Phase::provision ? "provision" : "build";
}

std::string_view to_string(Origin origin) {
    switch (origin) {
    case Origin::builtin:
        return "default";
    case Origin::config:
        return "config";
    case Origin::spec:
        return "spec";
    }
    return "?";
}

std::optional<Protocol> protocol_from_string(std::string_view text) {
    for (auto protocol : {Protocol::http, Protocol::https, Protocol::tcp}) {
        if (to_string(protocol) == text) {
            return protocol;
        }
    }
    return std::nullopt;
}

std::optional<std::uint16_t> default_port(Protocol protocol) {
    switch (protocol) {
    case Protocol::http:
        return 80;
    case Protocol::https:
        return 443;
    case Protocol::tcp:
        return std::nullopt;
    }
    return std::nullopt;
}

std::optional<std::string> host_problem(std::string_view host) {
    if (host.empty()) {
        return "the host is empty";
    }
    const std::string text(host);
    unsigned char address[16];
    if (inet_pton(AF_INET, text.c_str(), address) == 1 ||
        inet_pton(AF_INET6, text.c_str(), address) == 1) {
        return std::nullopt;
    }
    // inet_aton (and so getaddrinfo, curl, every C program) reads "0x7f.1", "127.1" and
    // "2130706433" as 127.0.0.1: such a name would slip past every check made on names.
    in_addr legacy{};
    if (inet_aton(text.c_str(), &legacy) != 0) {
        char canonical[INET_ADDRSTRLEN] = {};
        inet_ntop(AF_INET, &legacy, canonical, sizeof canonical);
        return "'" + text + "' is read by the C library as the IPv4 address " + canonical +
               "; write an address as four decimal numbers";
    }
    std::string_view name = host;
    if (name.starts_with("*.")) {
        name.remove_prefix(2);
    }
    if (name.size() > 253) {
        return "the host name is longer than 253 characters";
    }
    std::size_t start = 0;
    bool all_numeric = true;
    while (start <= name.size()) {
        const std::size_t dot = std::min(name.find('.', start), name.size());
        const std::string_view label = name.substr(start, dot - start);
        if (label.empty() || label.size() > 63) {
            return "'" + text + "' is not a valid host name (empty or over-long label)";
        }
        for (char c : label) {
            const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            if (!ok) {
                return "'" + text +
                       "' is not a valid host name (use lower-case letters, digits, '-' and '.'; "
                       "a wildcard only as a leading '*.')";
            }
            all_numeric = all_numeric && (c >= '0' && c <= '9');
        }
        if (label.front() == '-' || label.back() == '-') {
            return "'" + text + "' is not a valid host name (a label starts or ends with '-')";
        }
        start = dot + 1;
    }
    if (all_numeric) {
        return "'" + text + "' is neither a valid IP address nor a host name";
    }
    return std::nullopt;
}

} // namespace contractor::policy

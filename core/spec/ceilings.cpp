#include "spec/ceilings.hpp"

#include "spec/units.hpp"
#include "util/error.hpp"

namespace contractor::spec {

std::string format_limit(const LimitField& field, std::uint64_t value) {
    switch (field.kind) {
    case LimitKind::count:
        return std::to_string(value);
    case LimitKind::size:
        return format_size(value);
    case LimitKind::duration:
        return format_duration(value);
    case LimitKind::rate:
        return format_rate(value);
    }
    return std::to_string(value);
}

std::vector<std::string> over_ceilings(const Limits& asked, const Limits& ceilings) {
    std::vector<std::string> out;
    for (const auto& field : limit_fields) {
        const auto& value = asked.*field.member;
        const auto& ceiling = ceilings.*field.member;
        if (value && ceiling && *value > *ceiling) {
            out.push_back(std::string(field.key) + " " + format_limit(field, *value) +
                          " (ceiling " + format_limit(field, *ceiling) + ")");
        }
    }
    return out;
}

void enforce_ceilings(const BuildSpec& spec, const UserConfig& config,
                      const policy::EffectivePolicy& merged) {
    std::vector<std::string> over = over_ceilings(spec.limits, config.ceilings);
    if (config.spec_rules == SpecRules::deny) {
        // Only the rules the spec adds count: one the base already allows widens nothing.
        for (const auto phase : {policy::Phase::provision, policy::Phase::build}) {
            for (const auto& rule : merged.phase(phase)) {
                if (rule.origin == policy::Origin::spec) {
                    over.push_back(
                        "network rule " + std::string(policy::to_string(rule.rule.protocol)) +
                        "://" + rule.rule.host + ":" + std::to_string(rule.rule.port) + " while " +
                        (phase == policy::Phase::provision ? "provisioning" : "building") +
                        " (spec-rules: deny)");
                }
            }
        }
    }
    // host.contractor.internal reaches this machine's own loopback: a spec (usually from the
    // repository being built) may name it only when the config says so.
    for (const auto phase : {policy::Phase::provision, policy::Phase::build}) {
        for (const auto& rule : merged.phase(phase)) {
            if (rule.origin == policy::Origin::spec && rule.rule.host == policy::contractor_host &&
                !config.spec_may_reach_host) {
                const std::string where =
                    spec.document.file.empty() ? "" : spec.document.file + ": ";
                throw UsageError(
                    where + "the spec asks to reach host.contractor.internal:" +
                        std::to_string(rule.rule.port) +
                        ", the loopback of this machine, which only your config can allow",
                    "put the rule in your config's network section, or set 'network: "
                    "{spec-may-reach-host: true}' there");
            }
        }
    }
    if (over.empty()) {
        return;
    }
    std::string list;
    for (const auto& item : over) {
        list += (list.empty() ? "" : ", ") + item;
    }
    const std::string config_file =
        config.file ? config.file->string() : std::string("your user config");
    const std::string where = spec.document.file.empty() ? "" : spec.document.file + ": ";
    throw UsageError(where + "the spec asks for more than your config allows: " + list,
                     "lower what the spec asks for, or raise 'ceilings' / set 'spec-rules: "
                     "allow' in " +
                         config_file);
}

} // namespace contractor::spec

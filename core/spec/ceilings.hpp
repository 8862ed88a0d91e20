#pragma once

#include "policy/network_rule.hpp"
#include "spec/config.hpp"
#include "spec/limits.hpp"
#include "spec/spec.hpp"

#include <cstdint>
#include <string>
#include <vector>

// The user's ceiling over what a spec may ask for: config `ceilings:` (per limit) and
// `spec-rules: deny` (no network rules of the spec's own). A spec usually lives in the
// repository being built, so whoever can change the repository can change it; the ceiling is
// the user's answer to "how much of my machine may a pull request take".
namespace contractor::spec {

// `value` of the limit `field` as people read it: "2", "4 GiB", "1h 30m", "10 Mbit/s".
std::string format_limit(const LimitField& field, std::uint64_t value);

// Every limit set in `asked` that is above its ceiling in `ceilings`, as
// "memory 8 GiB (ceiling 4 GiB)", in limit_fields order.
std::vector<std::string> over_ceilings(const Limits& asked, const Limits& ceilings);

// Refuses (UsageError, one line listing all of it) a spec that asks for a limit above the
// config's ceiling, or, under `spec-rules: deny`, for any network rule that `merged` (the
// effective policy) had to add for it.
void enforce_ceilings(const BuildSpec& spec, const UserConfig& config,
                      const policy::EffectivePolicy& merged);

} // namespace contractor::spec

#pragma once

#include "policy/network_rule.hpp"

#include <nlohmann/json.hpp>

#include <vector>

namespace contractor::policy {

// Rules as JSON: [{"host", "port", "protocol", "from"}], the one form `dump --effective`, the
// plan, the job message and the build report use.
nlohmann::ordered_json rules_json(const std::vector<EffectiveRule>& rules);

// A policy as JSON: {"provision": [...], "build": [...]}.
nlohmann::ordered_json policy_json(const EffectivePolicy& policy);

} // namespace contractor::policy

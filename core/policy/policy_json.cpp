#include "policy/policy_json.hpp"

namespace contractor::policy {

nlohmann::ordered_json rules_json(const std::vector<EffectiveRule>& rules) {
    auto out = nlohmann::ordered_json::array();
    for (const auto& rule : rules) {
        out.push_back({{"host", rule.rule.host},
                       {"port", rule.rule.port},
                       {"protocol", to_string(rule.rule.protocol)},
                       {"from", to_string(rule.origin)}});
    }
    return out;
}

nlohmann::ordered_json policy_json(const EffectivePolicy& policy) {
    return {{"provision", rules_json(policy.provision)}, {"build", rules_json(policy.build)}};
}

} // namespace contractor::policy

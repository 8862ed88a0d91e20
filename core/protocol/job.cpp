#include "protocol/job.hpp"

#include "protocol/frames.hpp"

namespace contractor::protocol {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

policy::Origin origin_from(const std::string& text) {
    if (text == "config") {
        return policy::Origin::config;
    }
    return text == "spec" ? policy::Origin::spec : policy::Origin::builtin;
}

std::vector<policy::EffectiveRule> rules_from_json(const json& rules) {
    std::vector<policy::EffectiveRule> out;
    for (const auto& rule : rules) {
        const auto protocol = policy::protocol_from_string(rule.at("protocol").get<std::string>());
        if (!protocol) {
            throw ProtocolError("a network rule has an unknown protocol", false);
        }
        out.push_back(
            {{rule.at("host").get<std::string>(), rule.at("port").get<std::uint16_t>(), *protocol},
             origin_from(rule.at("from").get<std::string>())});
    }
    return out;
}

} // namespace

std::uint64_t Job::limit(std::string_view key) const {
    const auto found = limits.find(key);
    return found == limits.end() ? 0 : found->second;
}

ordered_json policy_to_json(const policy::EffectivePolicy& policy) {
    return {{"provision", spec::rules_json(policy.provision)},
            {"build", spec::rules_json(policy.build)}};
}

Job make_job(const spec::EffectiveSpec& effective) {
    Job job;
    const bool cached = effective.worker_image.kind == spec::ImageReference::Kind::cached;
    job.image_kind = cached ? "cached" : "file";
    job.image = effective.worker_image.value;
    job.build = effective.build;
    job.install = effective.install;
    job.ansible = effective.ansible;
    job.env = effective.env;
    for (std::size_t i = 0; i < spec::limit_fields.size(); ++i) {
        job.limits[std::string(spec::limit_fields[i].key)] = effective.limits[i].value;
    }
    job.network = effective.network;
    job.effective = spec::to_json(effective);
    return job;
}

ordered_json job_to_json(const Job& job) {
    ordered_json env = ordered_json::array();
    for (const auto& [name, value] : job.env) {
        env.push_back({name, value});
    }
    return {{"type", "job"},
            {"image", {{"kind", job.image_kind}, {"value", job.image}}},
            {"build", job.build},
            {"install", job.install},
            {"ansible", job.ansible},
            {"env", env},
            {"limits", job.limits},
            {"network", policy_to_json(job.network)},
            {"accel", job.accel},
            {"keep-worker", job.keep_worker},
            {"upstream-proxy",
             job.upstream_proxy ? ordered_json(*job.upstream_proxy) : ordered_json(nullptr)},
            {"effective", job.effective}};
}

Job job_from_json(const json& message) {
    try {
        Job job;
        job.image_kind = message.at("image").at("kind").get<std::string>();
        job.image = message.at("image").at("value").get<std::string>();
        job.build = message.at("build").get<std::string>();
        job.install = message.at("install").get<std::vector<std::string>>();
        job.ansible = message.at("ansible");
        for (const auto& pair : message.at("env")) {
            job.env.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
        }
        for (const auto& [key, value] : message.at("limits").items()) {
            job.limits[key] = value.get<std::uint64_t>();
        }
        job.network.provision = rules_from_json(message.at("network").at("provision"));
        job.network.build = rules_from_json(message.at("network").at("build"));
        job.accel = message.at("accel").get<std::string>();
        job.keep_worker = message.at("keep-worker").get<bool>();
        if (const auto& proxy = message.at("upstream-proxy"); proxy.is_string()) {
            job.upstream_proxy = proxy.get<std::string>();
        }
        job.effective = message.at("effective");
        return job;
    } catch (const json::exception& error) {
        throw ProtocolError(std::string("the job is malformed: ") + error.what(), false);
    }
}

} // namespace contractor::protocol

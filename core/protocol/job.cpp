#include "protocol/job.hpp"

#include "policy/policy_json.hpp"
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

const char* to_text(ImageSource source) {
    switch (source) {
    case ImageSource::cached:
        return "cached";
    case ImageSource::entry:
        return "entry";
    case ImageSource::file:
        break;
    }
    return "file";
}

ImageSource image_source_from(const std::string& text) {
    if (text == "file") {
        return ImageSource::file;
    }
    if (text == "cached") {
        return ImageSource::cached;
    }
    if (text == "entry") {
        return ImageSource::entry;
    }
    throw ProtocolError("the job names an unknown kind of image", false);
}

const char* to_text(WorkerAccel accel) {
    switch (accel) {
    case WorkerAccel::manager_decides:
        return "auto";
    case WorkerAccel::kvm:
        return "kvm";
    case WorkerAccel::tcg:
        break;
    }
    return "tcg";
}

WorkerAccel accel_from(const std::string& text) {
    if (text == "auto") {
        return WorkerAccel::manager_decides;
    }
    if (text == "kvm") {
        return WorkerAccel::kvm;
    }
    if (text == "tcg") {
        return WorkerAccel::tcg;
    }
    throw ProtocolError("the job names an unknown accelerator", false);
}

// The limits' keys in the message are the spec's.
ordered_json limits_to_json(const JobLimits& limits) {
    return {{"cpus", limits.cpus},
            {"memory", limits.memory},
            {"disk", limits.disk},
            {"cpu-time", limits.cpu_time},
            {"timeout", limits.timeout},
            {"network-rate", limits.network_rate},
            {"network-transfer", limits.network_transfer},
            {"log-size", limits.log_size},
            {"export-size", limits.export_size}};
}

JobLimits limits_from_json(const json& limits) {
    JobLimits out;
    out.cpus = limits.at("cpus").get<std::uint64_t>();
    out.memory = limits.at("memory").get<std::uint64_t>();
    out.disk = limits.at("disk").get<std::uint64_t>();
    out.cpu_time = limits.at("cpu-time").get<std::uint64_t>();
    out.timeout = limits.at("timeout").get<std::uint64_t>();
    out.network_rate = limits.at("network-rate").get<std::uint64_t>();
    out.network_transfer = limits.at("network-transfer").get<std::uint64_t>();
    out.log_size = limits.at("log-size").get<std::uint64_t>();
    out.export_size = limits.at("export-size").get<std::uint64_t>();
    return out;
}

} // namespace

ordered_json policy_to_json(const policy::EffectivePolicy& policy) {
    return policy::policy_json(policy);
}

ordered_json job_to_json(const Job& job) {
    ordered_json env = ordered_json::array();
    for (const auto& [name, value] : job.env) {
        env.push_back({name, value});
    }
    return {{"type", "job"},
            {"image", {{"kind", to_text(job.image_source)}, {"value", job.image}}},
            {"build", job.build},
            {"install", job.install},
            {"ansible", job.ansible},
            {"env", env},
            {"limits", limits_to_json(job.limits)},
            {"network", policy_to_json(job.network)},
            {"accel", to_text(job.accel)},
            {"keep-worker", job.keep_worker},
            {"upstream-proxy",
             job.upstream_proxy ? ordered_json(*job.upstream_proxy) : ordered_json(nullptr)},
            {"contractor-host", job.contractor_host_address},
            {"on-violation", job.on_violation == OnViolation::warn    ? "warn"
                             : job.on_violation == OnViolation::audit ? "audit"
                                                                      : "fail"},
            {"layers",
             {{"reuse", job.layers.reuse},
              {"max-age", job.layers.max_age},
              {"max-bytes", job.layers.max_bytes}}},
            {"pool", {{"size", job.pool.size}, {"idle", job.pool.idle}}},
            {"max-workers", job.max_workers},
            {"effective", job.effective}};
}

Job job_from_json(const json& message) {
    try {
        Job job;
        job.image_source = image_source_from(message.at("image").at("kind").get<std::string>());
        job.image = message.at("image").at("value").get<std::string>();
        job.build = message.at("build").get<std::string>();
        job.install = message.at("install").get<std::vector<std::string>>();
        job.ansible = message.at("ansible");
        for (const auto& pair : message.at("env")) {
            job.env.emplace_back(pair.at(0).get<std::string>(), pair.at(1).get<std::string>());
        }
        job.limits = limits_from_json(message.at("limits"));
        job.network.provision = rules_from_json(message.at("network").at("provision"));
        job.network.build = rules_from_json(message.at("network").at("build"));
        job.accel = accel_from(message.at("accel").get<std::string>());
        job.keep_worker = message.at("keep-worker").get<bool>();
        if (const auto& proxy = message.at("upstream-proxy"); proxy.is_string()) {
            job.upstream_proxy = proxy.get<std::string>();
        }
        job.contractor_host_address = message.at("contractor-host").get<std::string>();
        const auto on_violation = message.at("on-violation").get<std::string>();
        if (on_violation != "warn" && on_violation != "fail" && on_violation != "audit") {
            throw ProtocolError("the job's on-violation is '" + on_violation + "'", false);
        }
        job.on_violation = on_violation == "warn"    ? OnViolation::warn
                           : on_violation == "audit" ? OnViolation::audit
                                                     : OnViolation::fail;
        const auto& layers = message.at("layers");
        job.layers.reuse = layers.at("reuse").get<bool>();
        job.layers.max_age = layers.at("max-age").get<std::uint64_t>();
        job.layers.max_bytes = layers.at("max-bytes").get<std::uint64_t>();
        job.pool.size = message.at("pool").at("size").get<std::uint64_t>();
        job.pool.idle = message.at("pool").at("idle").get<std::uint64_t>();
        job.max_workers = message.at("max-workers").get<std::uint64_t>();
        job.effective = message.at("effective");
        return job;
    } catch (const json::exception& error) {
        throw ProtocolError(std::string("the job is malformed: ") + error.what(), false);
    }
}

} // namespace contractor::protocol

#include "spec/effective.hpp"

#include <stdexcept>
#include <system_error>

namespace contractor::spec {
namespace {

using nlohmann::ordered_json;

// A worker-image value names a file when it looks like a path (a '/', or a disk-image
// extension) or a file of that name exists beside the spec; otherwise it is the name of an
// image in contractor's cache, such as the `worker` image `contractor image build` makes.
ImageReference classify_image(const std::filesystem::path& directory, const std::string& value) {
    const std::filesystem::path path = directory / value;
    const std::string extension = std::filesystem::path(value).extension().string();
    std::error_code error;
    const bool looks_like_path = value.find('/') != std::string::npos || extension == ".img" ||
                                 extension == ".qcow2" || extension == ".raw" ||
                                 std::filesystem::exists(path, error);
    if (looks_like_path) {
        return {ImageReference::Kind::file, path.lexically_normal().string()};
    }
    return {ImageReference::Kind::cached, value};
}

} // namespace

ordered_json rules_json(const std::vector<policy::EffectiveRule>& rules) {
    auto out = ordered_json::array();
    for (const auto& rule : rules) {
        out.push_back({{"host", rule.rule.host},
                       {"port", rule.rule.port},
                       {"protocol", policy::to_string(rule.rule.protocol)},
                       {"from", policy::to_string(rule.origin)}});
    }
    return out;
}

std::string_view to_string(ValueOrigin origin) {
    switch (origin) {
    case ValueOrigin::builtin:
        return "default";
    case ValueOrigin::config:
        return "config";
    case ValueOrigin::spec:
        return "spec";
    }
    return "?";
}

const EffectiveLimit& EffectiveSpec::limit(std::string_view key) const {
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        if (limit_fields[i].key == key) {
            return limits[i];
        }
    }
    throw std::out_of_range("no limit named " + std::string(key));
}

EffectiveSpec resolve(const BuildSpec& spec, const UserConfig& config) {
    EffectiveSpec out;
    out.directory = spec.directory;
    out.config_file = config.file;
    out.worker_image = classify_image(spec.directory, spec.worker_image);
    out.source = absolute_path(spec.directory, spec.source);
    out.workspace = absolute_path(spec.directory, spec.workspace);
    const auto inside = out.workspace.lexically_relative(out.source);
    if (!inside.empty() && *inside.begin() != "..") {
        out.workspace_in_source = inside;
    }
    out.build = spec.build;
    out.install = spec.install;
    out.ansible = spec.ansible;
    out.exclude = spec.exclude;
    out.env = spec.env;
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        const auto& field = limit_fields[i];
        if (const auto& value = spec.limits.*field.member) {
            out.limits[i] = {*value, ValueOrigin::spec};
        } else if (const auto& configured = config.limits.*field.member) {
            out.limits[i] = {*configured, ValueOrigin::config};
        } else {
            out.limits[i] = {field.builtin_default, ValueOrigin::builtin};
        }
    }
    out.network = policy::merge_policy(config.network, spec.network);
    return out;
}

ordered_json to_json(const EffectiveSpec& effective) {
    ordered_json limits = ordered_json::object();
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        limits[std::string(limit_fields[i].key)] = {
            {"value", effective.limits[i].value},
            {"unit", base_unit(limit_fields[i].kind)},
            {"from", to_string(effective.limits[i].origin)}};
    }
    ordered_json env = ordered_json::object();
    for (const auto& [name, value] : effective.env) {
        env[name] = value;
    }
    const bool cached = effective.worker_image.kind == ImageReference::Kind::cached;
    return {
        {"config", effective.config_file ? ordered_json(effective.config_file->string())
                                         : ordered_json(nullptr)},
        {"worker-image", {{cached ? "cached" : "file", effective.worker_image.value}}},
        {"source", effective.source.string()},
        {"workspace", effective.workspace.string()},
        {"workspace-in-source", effective.workspace_in_source
                                    ? ordered_json(effective.workspace_in_source->string())
                                    : ordered_json(nullptr)},
        {"build", effective.build},
        {"install", effective.install},
        {"ansible", effective.ansible},
        {"exclude", effective.exclude},
        {"env", env},
        {"limits", limits},
        {"network",
         {{"provision", rules_json(effective.network.provision)},
          {"build", rules_json(effective.network.build)}}},
    };
}

} // namespace contractor::spec

#pragma once

#include "policy/network_rule.hpp"
#include "spec/config.hpp"
#include "spec/limits.hpp"
#include "spec/spec.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <optional>
#include <string>

namespace contractor::spec {

// Where a resolved value came from.
enum class ValueOrigin { builtin, config, spec };

std::string_view to_string(ValueOrigin origin);

// One resolved limit.
struct EffectiveLimit {
    std::uint64_t value;
    ValueOrigin origin;
};

// The worker image a spec names: a file, or an image in contractor's cache.
struct ImageReference {
    enum class Kind { file, cached };
    Kind kind;
    std::string value; // absolute path for a file, the name for a cached image
};

// Everything a build will use, with every default filled in: printed by `dump --effective`
// and at the start of every build.
struct EffectiveSpec {
    std::filesystem::path directory;
    std::optional<std::filesystem::path> config_file;
    ImageReference worker_image;
    std::filesystem::path source;
    std::filesystem::path workspace;
    // The workspace's path inside the source tree, when it lies there; never copied in.
    std::optional<std::filesystem::path> workspace_in_source;
    std::string build;
    std::vector<std::string> install;
    nlohmann::ordered_json ansible;
    std::vector<std::string> exclude;
    std::vector<std::pair<std::string, std::string>> env;
    std::array<EffectiveLimit, limit_fields.size()> limits; // in limit_fields order
    policy::EffectivePolicy network;

    // The resolved limit named `key` (as in limit_fields); throws std::out_of_range otherwise.
    const EffectiveLimit& limit(std::string_view key) const;
};

// Fills in defaults (spec, then user config, then built-in), makes paths absolute, classifies
// the worker image and merges the network policy.
EffectiveSpec resolve(const BuildSpec& spec, const UserConfig& config);

// Rules as JSON: [{"host", "port", "protocol", "from"}], as `dump --effective` and the build
// report show them.
nlohmann::ordered_json rules_json(const std::vector<policy::EffectiveRule>& rules);

// The effective spec as JSON: limits in base units, each limit and rule tagged with its origin.
nlohmann::ordered_json to_json(const EffectiveSpec& effective);

} // namespace contractor::spec

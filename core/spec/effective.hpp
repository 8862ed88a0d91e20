#pragma once

#include "policy/network_rule.hpp"
#include "spec/config.hpp"
#include "spec/limits.hpp"
#include "spec/spec.hpp"
#include "spec/spec_paths.hpp"

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

// The spec's paths given on the command line instead (`--image`, `--source`, `--workspace`).
// They are the user's own: relative to `current_directory`, symlinks followed, anywhere.
struct PathOverrides {
    std::optional<std::string> worker_image; // a file or the name of a cached image
    std::optional<std::string> source;
    std::optional<std::string> workspace;
    std::filesystem::path current_directory;
};

// Where each of the effective spec's paths came from.
struct PathOrigins {
    PathOrigin worker_image = PathOrigin::spec;
    PathOrigin source = PathOrigin::spec;
    PathOrigin workspace = PathOrigin::spec;
};

// Everything a build will use, with every default filled in: printed by `dump --effective`
// and at the start of every build.
struct EffectiveSpec {
    std::filesystem::path directory;
    std::optional<std::filesystem::path> config_file;
    ImageReference worker_image;
    std::filesystem::path source;
    std::filesystem::path workspace;
    PathOrigins path_origins;
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

// Fills in defaults (spec, then user config, then built-in; a built-in default above the
// config's ceiling is lowered to it), makes paths absolute, classifies the worker image and
// merges the network policy. Refuses (UsageError, exit 2) what the spec may not ask for: a
// path outside its folder or through a symlink (yaml::SourceError at the key, unless
// `overrides` replaces it), limits over the config's ceilings, network rules under
// `spec-rules: deny`; and a workspace that is or contains the source.
EffectiveSpec resolve(const BuildSpec& spec, const UserConfig& config,
                      const PathOverrides& overrides = {});

// The effective spec as JSON: limits in base units, each limit and rule tagged with its origin,
// and where each path came from ("paths-from").
nlohmann::ordered_json to_json(const EffectiveSpec& effective);

} // namespace contractor::spec

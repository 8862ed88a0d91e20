#pragma once

#include "policy/network_rule.hpp"
#include "spec/limits.hpp"
#include "yaml/document.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace contractor::spec {

// A build spec as the user wrote it, checked against the schema. Paths are still as written;
// spec::resolve() turns them absolute and fills in defaults.
struct BuildSpec {
    std::filesystem::path directory; // the directory the spec's relative paths start from

    std::string worker_image;         // a disk image path or the name of a cached image
    std::string source;               // the source tree, copied to /workspace/src
    std::string workspace;            // saved workspace: copied in before, exported after
    std::string build;                // shell script run in /workspace/src as `worker`
    std::vector<std::string> install; // Debian packages installed with apt
    nlohmann::ordered_json ansible;   // a playbook (list of plays), verbatim
    std::vector<std::string> exclude; // globs not copied into the worker
    std::vector<std::pair<std::string, std::string>> env; // build environment, in order
    Limits limits;
    policy::NetworkRules network;

    yaml::Document document; // the whole file as yaml.safe_load reads it: what `dump` prints
};

// `value` (absolute, or relative to `directory`) as an absolute path with symbolic links of
// its existing part resolved; lexically normalised where resolving fails.
std::filesystem::path absolute_path(const std::filesystem::path& directory,
                                    const std::string& value);

// Reads and checks the spec at `path`. Throws yaml::SourceError (FILE:LINE:COLUMN) for every
// problem in it, UsageError when it cannot be read.
BuildSpec load_spec(const std::string& path);

// Checks a spec already parsed from `document`, whose relative paths start at `directory`.
BuildSpec parse_spec(yaml::Document document, const std::filesystem::path& directory);

} // namespace contractor::spec

#pragma once

#include "policy/network_rule.hpp"
#include "spec/limits.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace contractor::spec {

// The manager VM (topology nested): where it runs and how big it is.
struct ManagerConfig {
    // The host libvirt URI; empty: qemu:///session (no root needed). --connect overrides it.
    std::string connect;
    std::uint64_t memory = 4ULL << 30; // RAM, shared by the workers running in it
    std::uint64_t cpus = 2;
    std::uint64_t disk = 32ULL << 30; // virtual size; grows on the host as it is used
};

// Config `logs:` how many build logs are kept ($XDG_STATE_HOME/contractor/logs), and for how
// long: a log past either is removed when a build starts.
struct LogRetention {
    std::uint64_t keep = 100;                   // the newest this many
    std::uint64_t max_age_seconds = 30 * 86400; // none older than this
};

// Config `network: {on-violation: ...}`: what a refused network attempt does to the build.
enum class OnViolation { fail, warn };

// Config `spec-rules:` whether a spec may add network rules to the base policy.
enum class SpecRules { allow, deny };

// The user's settings for every build: default limits and the base network policy, from
// $XDG_CONFIG_HOME/contractor/config.yaml (or the file given with --config).
// `cache:`: provisioned layers (a worker's disk as provisioning left it, reused by the next
// build with the same image and provisioning).
struct LayerCache {
    std::uint64_t max_size = 20ULL << 30;      // all layers together; 0 keeps none
    std::uint64_t max_age_seconds = 7 * 86400; // an older layer is provisioned afresh
};

// `pool:` and `pool-idle:`: ready workers (booted after a build for the next one like it).
struct ReadyPool {
    std::uint64_t size = 1;               // 0 turns them off
    std::uint64_t idle_seconds = 15 * 60; // an idle ready worker is stopped after this
};

struct UserConfig {
    std::optional<std::filesystem::path> file; // absent when no config file exists
    Limits limits;
    // How VMs run: "auto" (KVM when it really works, else TCG), "kvm" or "tcg". The command
    // line's --accel overrides it.
    std::string accel = "auto";
    // An HTTP proxy (http://HOST:PORT) the gateway sends every allowed worker connection
    // through, instead of connecting itself: a local apt cache, a corporate proxy. The policy
    // is still checked against the host the worker asked for.
    std::optional<std::string> proxy;
    // The base network policy. A phase the config file does not mention keeps the built-in
    // base (Debian's mirrors for provisioning, nothing for the build).
    policy::EffectivePolicy network = policy::builtin_base_policy();
    // `network: {on-violation: warn}`: a refused attempt is reported and the build goes on.
    // Default fail: the build stops as network-violation, exit 3.
    OnViolation on_violation = OnViolation::fail;
    // `network: {spec-may-reach-host: true}`: a spec may name host.contractor.internal (the
    // loopback of this machine) in its rules. Off: only this config's rules may.
    bool spec_may_reach_host = false;
    ManagerConfig manager;
    // `export: {allow-git: true}`: let `.git` folders, `.git` files and bare-repository
    // layouts come back from the worker. Off by default: git runs what they configure
    // (core.fsmonitor, hooks) when the user types `git status` in the exported folder.
    bool export_allow_git = false;
    // `ceilings:` the most a spec may ask for, per limit (same keys and units as `limits`). A
    // spec over a ceiling is refused; a built-in default over one is lowered to it.
    Limits ceilings;
    // `spec-rules: deny`: a spec that adds any network rule to the base policy is refused.
    SpecRules spec_rules = SpecRules::allow;
    // `paths: {allow: [DIR, ...]}`: absolute folders under which a spec's source, workspace
    // and worker image may also lie, besides the spec's own folder (no symlinks below either).
    std::vector<std::filesystem::path> allowed_path_roots;
    LogRetention logs;
    LayerCache cache;
    ReadyPool pool;
    // How many builds run at once on one side (the host, or the manager VM); more queue.
    std::uint64_t max_workers = 2;
};

// The parts of the process environment that locate the config file. Passed in, not read from
// globals, so tests can point them anywhere.
struct ConfigLocation {
    std::optional<std::string> xdg_config_home;
    std::optional<std::string> home;
    std::optional<std::string> explicit_file; // --config: must exist
};

// Where the config file is looked for when --config is not given, or nullopt without HOME.
std::optional<std::filesystem::path> default_config_path(const ConfigLocation& location);

// The user config: the explicit file (which must exist), else the default file if it exists,
// else built-in defaults only. Throws yaml::SourceError for problems in the file.
UserConfig load_user_config(const ConfigLocation& location);

} // namespace contractor::spec

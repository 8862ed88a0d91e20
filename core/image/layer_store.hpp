#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

// Provisioned layers: the worker's disk as provisioning left it, kept read-only so that the
// next build with the same inputs starts from it instead of provisioning again.
namespace contractor::image {

// Everything that shapes a provisioned layer. A layer is reused only when all of it is equal.
struct LayerInputs {
    std::string image;        // the worker image's cache entry, NAME-DIGEST
    std::string image_sha256; // its disk's SHA-256
    std::vector<std::string> install;
    nlohmann::ordered_json ansible; // the playbook, or null
    nlohmann::ordered_json provision_policy;
    std::uint64_t disk_bytes = 0; // the worker grows its filesystem to it while provisioning
    std::string contractor_version;
};

// The inputs as the layer's record keeps them (and `contractor cache list` shows them).
nlohmann::ordered_json to_json(const LayerInputs& inputs);
// The layer's name: the SHA-256 of its inputs, canonical JSON.
std::string layer_key(const LayerInputs& inputs);

// One layer in the store: a folder named after its key holding disk.qcow2 (a qcow2 overlay
// whose backing file is the image's cached disk), layer.json and last-used.
struct Layer {
    std::string key;
    std::filesystem::path directory;
    std::string disk_sha256; // of disk.qcow2 as it was saved
    std::uint64_t size = 0;  // bytes disk.qcow2 takes
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point last_used;
    nlohmann::ordered_json inputs;

    std::filesystem::path disk() const { return directory / "disk.qcow2"; }
};

// $XDG_CACHE_HOME/contractor/layers (beside the images), on the side that boots the workers:
// the host in the direct topology, the manager VM in the nested one.
class LayerStore {
public:
    explicit LayerStore(std::filesystem::path root);
    static std::filesystem::path default_root();

    const std::filesystem::path& root() const { return root_; }

    // The complete layer called `key`, or nullopt. A layer older than `max_age` is removed and
    // not returned: provisioning again brings the security updates published since.
    std::optional<Layer> find(const std::string& key, std::chrono::seconds max_age) const;
    // Records that a build starts from `layer` now (eviction removes the least recently used).
    void touch(const Layer& layer) const;

    // Copies `frozen_disk` (an overlay nothing writes to any more) into the store as the layer
    // `key`, hashing it on the way, and makes it read-only. `between_chunks` runs after every
    // 4 MiB (a budget check that may throw; nothing is left behind then). Replaces a layer of
    // the same key.
    Layer save(const std::string& key, const std::filesystem::path& frozen_disk,
               const nlohmann::ordered_json& inputs,
               const std::function<void()>& between_chunks = {}) const;

    // Every complete layer, the most recently used first.
    std::vector<Layer> list() const;
    // Removes the layer `key` (a full key or a unique prefix); the layer removed, or nullopt
    // when no layer or more than one matched.
    std::optional<Layer> remove(const std::string& key) const;
    // Removes least recently used layers until the rest take at most `max_bytes`, never
    // `keep` (the layer just saved); returns what it removed.
    std::vector<Layer> evict_to(std::uint64_t max_bytes, const std::string& keep = {}) const;
    // Removes layers made more than `max_age` ago, and unfinished saves; returns the layers.
    std::vector<Layer> remove_older_than(std::chrono::seconds max_age) const;

private:
    std::optional<Layer> read(const std::filesystem::path& directory) const;

    std::filesystem::path root_;
};

// What `contractor cache prune` removes.
struct LayerPrune {
    bool all = false;
    std::optional<std::string> key; // one layer (a full key or a unique prefix)
    std::chrono::seconds max_age{7 * 86400};
    std::uint64_t max_bytes = 20ULL << 30;
};

// Removes what `rule` names: every layer, one, or those older than max_age and the least
// recently used beyond max_bytes. Returns what it removed.
std::vector<Layer> prune_layers(const LayerStore& store, const LayerPrune& rule);

// A layer as `contractor cache list` and the agent's `cache list` write it:
// {"key", "bytes", "created", "last_used" (unix seconds), "covers" (what its key covers)}.
nlohmann::ordered_json layer_listing(const Layer& layer);

// One line on what a layer's key covers: "worker-dad55c7f39b0 + install: make + ansible:
// 2 plays + provision network: 3 rules + disk 8 GiB + contractor 0.1.0".
std::string describe_inputs(const nlohmann::ordered_json& inputs);

// "45 s", "3 min", "2.1 h", "4 days": how long ago `time` was.
std::string human_age(std::chrono::system_clock::time_point time);

} // namespace contractor::image

#include "image/layer_store.hpp"

#include "image/cache.hpp"
#include "image/sha256.hpp"
#include "spec/units.hpp"
#include "util/error.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace contractor::image {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// Bumped when what a layer holds, or how it is keyed, changes.
constexpr int layer_format = 1;

constexpr const char* staging_prefix = ".staging-";

std::int64_t to_unix(std::chrono::system_clock::time_point time) {
    return std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix(std::int64_t seconds) {
    return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

std::uint64_t allocated_bytes(const fs::path& file) {
    struct stat status {};
    return ::stat(file.c_str(), &status) == 0 ? static_cast<std::uint64_t>(status.st_blocks) * 512
                                              : 0;
}

std::chrono::system_clock::time_point modified(const fs::path& file) {
    struct stat status {};
    if (::stat(file.c_str(), &status) != 0) {
        return {};
    }
    return from_unix(status.st_mtim.tv_sec);
}

void write_file(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
        throw InfrastructureError("cannot write " + file.string());
    }
}

// Removes a folder of ours whose files were made read-only.
void remove_tree(const fs::path& directory) {
    std::error_code error;
    fs::remove_all(directory, error);
}

} // namespace

ordered_json to_json(const LayerInputs& inputs) {
    return {{"format", layer_format},
            {"image", inputs.image},
            {"image_sha256", inputs.image_sha256},
            {"install", inputs.install},
            {"ansible", inputs.ansible},
            {"provision_policy", inputs.provision_policy},
            {"disk_bytes", inputs.disk_bytes},
            {"contractor_version", inputs.contractor_version}};
}

std::string layer_key(const LayerInputs& inputs) {
    Sha256 hash;
    hash.update(to_json(inputs).dump());
    return hash.hex_digest();
}

LayerStore::LayerStore(fs::path root) : root_(std::move(root)) {}

fs::path LayerStore::default_root() {
    return ImageCache::default_root().parent_path() / "layers";
}

std::optional<Layer> LayerStore::read(const fs::path& directory) const {
    std::ifstream in(directory / "layer.json");
    if (!in || !fs::is_regular_file(directory / "disk.qcow2")) {
        return std::nullopt;
    }
    const auto json = ordered_json::parse(in, nullptr, false);
    if (!json.is_object() || !json.contains("key") || !json["key"].is_string() ||
        !json.contains("disk_sha256") || !json["disk_sha256"].is_string() ||
        !json.contains("created") || !json["created"].is_number_integer()) {
        return std::nullopt;
    }
    Layer layer;
    layer.key = json["key"].get<std::string>();
    if (layer.key != directory.filename().string()) {
        return std::nullopt;
    }
    layer.directory = directory;
    layer.disk_sha256 = json["disk_sha256"].get<std::string>();
    layer.created = from_unix(json["created"].get<std::int64_t>());
    layer.inputs = json.value("inputs", ordered_json::object());
    layer.size = allocated_bytes(layer.disk());
    const auto used = modified(directory / "last-used");
    layer.last_used = std::max(used, layer.created);
    return layer;
}

std::optional<Layer> LayerStore::find(const std::string& key, std::chrono::seconds max_age) const {
    auto layer = read(root_ / key);
    if (!layer) {
        return std::nullopt;
    }
    if (std::chrono::system_clock::now() - layer->created > max_age) {
        remove_tree(layer->directory);
        return std::nullopt;
    }
    return layer;
}

void LayerStore::touch(const Layer& layer) const {
    // A file of its own, rewritten: layer.json stays read-only.
    std::error_code error;
    fs::remove(layer.directory / "last-used", error);
    std::ofstream(layer.directory / "last-used").flush();
}

Layer LayerStore::save(const std::string& key, const fs::path& frozen_disk,
                       const ordered_json& inputs,
                       const std::function<void()>& between_chunks) const {
    fs::create_directories(root_);
    const fs::path staging = root_ / (staging_prefix + key + "-" + std::to_string(getpid()));
    remove_tree(staging);
    fs::create_directories(staging);
    try {
        std::ifstream in(frozen_disk, std::ios::binary);
        if (!in) {
            throw InfrastructureError("cannot read " + frozen_disk.string() + ": " +
                                      std::strerror(errno));
        }
        std::ofstream out(staging / "disk.qcow2", std::ios::binary | std::ios::trunc);
        Sha256 hash;
        std::string chunk(4 << 20, '\0');
        while (in) {
            in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
            const auto got = static_cast<std::size_t>(in.gcount());
            hash.update(std::string_view(chunk.data(), got));
            out.write(chunk.data(), static_cast<std::streamsize>(got));
            if (between_chunks) {
                between_chunks();
            }
        }
        out.close();
        if (in.bad() || !out) {
            throw InfrastructureError("cannot copy " + frozen_disk.string() + " into " +
                                      staging.string());
        }
        Layer layer;
        layer.key = key;
        layer.disk_sha256 = hash.hex_digest();
        layer.created = std::chrono::system_clock::now();
        layer.last_used = layer.created;
        layer.inputs = inputs;
        write_file(staging / "layer.json", ordered_json{{"key", key},
                                                        {"disk_sha256", layer.disk_sha256},
                                                        {"created", to_unix(layer.created)},
                                                        {"inputs", inputs}}
                                                   .dump(2) +
                                               "\n");
        // Read-only for everyone, this account included: nothing that boots from it may
        // write it (QEMU opens it as a backing file, read-only).
        fs::permissions(staging / "disk.qcow2",
                        fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
        fs::permissions(staging / "layer.json",
                        fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
        fs::permissions(staging, fs::perms::owner_all | fs::perms::group_read |
                                     fs::perms::group_exec | fs::perms::others_read |
                                     fs::perms::others_exec);
        const fs::path target = root_ / key;
        remove_tree(target);
        fs::rename(staging, target);
        layer.directory = target;
        layer.size = allocated_bytes(layer.disk());
        touch(layer);
        return layer;
    } catch (...) {
        remove_tree(staging);
        throw;
    }
}

std::vector<Layer> LayerStore::list() const {
    std::vector<Layer> layers;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root_, error)) {
        if (auto layer = read(entry.path())) {
            layers.push_back(std::move(*layer));
        }
    }
    std::sort(layers.begin(), layers.end(),
              [](const Layer& a, const Layer& b) { return a.last_used > b.last_used; });
    return layers;
}

std::optional<Layer> LayerStore::remove(const std::string& key) const {
    if (key.empty() || key.find_first_not_of("0123456789abcdef") != std::string::npos) {
        return std::nullopt;
    }
    std::vector<Layer> matches;
    for (auto& layer : list()) {
        if (layer.key.starts_with(key)) {
            matches.push_back(std::move(layer));
        }
    }
    if (matches.size() != 1) {
        return std::nullopt;
    }
    remove_tree(matches.front().directory);
    return std::move(matches.front());
}

std::vector<Layer> LayerStore::evict_to(std::uint64_t max_bytes, const std::string& keep) const {
    auto layers = list(); // most recently used first
    std::uint64_t total = 0;
    std::vector<Layer> removed;
    for (auto& layer : layers) {
        if (layer.key == keep || total + layer.size <= max_bytes) {
            total += layer.size;
            continue;
        }
        remove_tree(layer.directory);
        removed.push_back(std::move(layer));
    }
    return removed;
}

std::vector<Layer> LayerStore::remove_older_than(std::chrono::seconds max_age) const {
    std::vector<Layer> removed;
    const auto now = std::chrono::system_clock::now();
    for (auto& layer : list()) {
        if (now - layer.created > max_age) {
            remove_tree(layer.directory);
            removed.push_back(std::move(layer));
        }
    }
    // Saves cut short by a killed agent (a live one finishes in seconds).
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root_, error)) {
        const auto name = entry.path().filename().string();
        if (name.starts_with(staging_prefix) &&
            now - modified(entry.path()) > std::chrono::hours(1)) {
            remove_tree(entry.path());
        }
    }
    return removed;
}

std::vector<Layer> prune_layers(const LayerStore& store, const LayerPrune& rule) {
    std::vector<Layer> removed;
    if (rule.key) {
        if (auto layer = store.remove(*rule.key)) {
            removed.push_back(std::move(*layer));
        }
        return removed;
    }
    if (rule.all) {
        for (const auto& layer : store.list()) {
            if (auto gone = store.remove(layer.key)) {
                removed.push_back(std::move(*gone));
            }
        }
        return removed;
    }
    removed = store.remove_older_than(rule.max_age);
    for (auto& layer : store.evict_to(rule.max_bytes)) {
        removed.push_back(std::move(layer));
    }
    return removed;
}

ordered_json layer_listing(const Layer& layer) {
    return {{"key", layer.key},
            {"bytes", layer.size},
            {"created", to_unix(layer.created)},
            {"last_used", to_unix(layer.last_used)},
            {"covers", describe_inputs(layer.inputs)}};
}

std::string describe_inputs(const ordered_json& inputs) {
    if (!inputs.is_object()) {
        return "(unknown)";
    }
    std::string text = inputs.value("image", std::string("?"));
    const auto install = inputs.value("install", ordered_json::array());
    if (install.is_array() && !install.empty()) {
        text += " + install:";
        for (const auto& package : install) {
            text += " " + (package.is_string() ? package.get<std::string>() : package.dump());
        }
    }
    const auto ansible = inputs.value("ansible", ordered_json());
    if (ansible.is_array() && !ansible.empty()) {
        text += " + ansible: " + std::to_string(ansible.size()) +
                (ansible.size() == 1 ? " play" : " plays");
    }
    const auto rules = inputs.value("provision_policy", ordered_json::array());
    text +=
        " + provision network: " + std::to_string(rules.is_array() ? rules.size() : 0) + " rules";
    text += " + disk " + spec::format_size(inputs.value("disk_bytes", std::uint64_t{0}));
    text += " + contractor " + inputs.value("contractor_version", std::string("?"));
    return text;
}

std::string human_age(std::chrono::system_clock::time_point time) {
    const double seconds = std::max(
        std::chrono::duration<double>(std::chrono::system_clock::now() - time).count(), 0.0);
    char text[32];
    if (seconds < 120) {
        std::snprintf(text, sizeof text, "%.0f s", seconds);
    } else if (seconds < 7200) {
        std::snprintf(text, sizeof text, "%.0f min", seconds / 60);
    } else if (seconds < 2 * 86400) {
        std::snprintf(text, sizeof text, "%.1f h", seconds / 3600);
    } else {
        std::snprintf(text, sizeof text, "%.0f days", seconds / 86400);
    }
    return text;
}

} // namespace contractor::image

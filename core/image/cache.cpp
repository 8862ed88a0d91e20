#include "image/cache.hpp"

#include "image/sha256.hpp"
#include "util/error.hpp"
#include "util/text.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace contractor::image {
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& file) {
    std::ifstream in(file);
    if (!in) {
        return nullptr;
    }
    try {
        return nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception&) {
        return nullptr; // a damaged entry is skipped, not fatal
    }
}

void write_json_atomically(const fs::path& file, const nlohmann::json& value) {
    const fs::path temporary = file.string() + ".tmp" + std::to_string(getpid());
    {
        std::ofstream out(temporary);
        out << value.dump(2) << '\n';
        if (!out) {
            throw InfrastructureError("cannot write " + temporary.string());
        }
    }
    fs::rename(temporary, file);
}

std::optional<CachedImage> read_entry(const fs::path& directory) {
    const auto json = read_json(directory / "image.json");
    if (!json.is_object() || !fs::exists(directory / "disk.qcow2")) {
        return std::nullopt;
    }
    CachedImage image;
    image.name = json.value("name", "");
    image.digest = json.value("digest", "");
    image.disk_sha256 = json.value("disk_sha256", "");
    image.kernel_sha256 = json.value("kernel_sha256", "");
    image.initrd_sha256 = json.value("initrd_sha256", "");
    image.init = json.value("init", "");
    image.directory = directory;
    std::error_code error;
    image.created = fs::last_write_time(directory / "image.json", error);
    return image;
}

} // namespace

std::uint64_t CachedImage::size_on_disk() const {
    std::uint64_t total = 0;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(directory, error)) {
        struct stat info {};
        if (::stat(entry.path().c_str(), &info) == 0) {
            total += static_cast<std::uint64_t>(info.st_blocks) * 512;
        }
    }
    return total;
}

ImageCache::ImageCache(fs::path root) : root_(std::move(root)) {
    std::error_code error;
    fs::create_directories(root_, error);
    if (error) {
        throw InfrastructureError("cannot create the image cache " + root_.string() + ": " +
                                      error.message(),
                                  "set XDG_CACHE_HOME to a writable folder");
    }
}

fs::path ImageCache::default_root() {
    if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache != nullptr && cache[0] == '/') {
        return fs::path(cache) / "contractor" / "images";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] != '\0') {
        return fs::path(home) / ".cache" / "contractor" / "images";
    }
    throw InfrastructureError("cannot locate the image cache: neither XDG_CACHE_HOME nor HOME "
                              "is set");
}

std::vector<CachedImage> ImageCache::list() const {
    std::vector<CachedImage> out;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(root_, error)) {
        if (entry.is_directory() && entry.path().filename().string().front() != '.') {
            if (auto image = read_entry(entry.path())) {
                out.push_back(std::move(*image));
            }
        }
    }
    std::sort(out.begin(), out.end(), [](const CachedImage& a, const CachedImage& b) {
        return a.name != b.name ? a.name < b.name : a.created > b.created;
    });
    return out;
}

std::optional<CachedImage> ImageCache::find(const std::string& name,
                                            const std::string& digest) const {
    return read_entry(root_ / (name + "-" + digest));
}

std::optional<CachedImage> ImageCache::newest(const std::string& name) const {
    for (auto& image : list()) {
        if (image.name == name) {
            return image; // list() puts the newest of a name first
        }
    }
    return std::nullopt;
}

std::optional<CachedImage> ImageCache::find_by_disk(const std::string& disk_sha256) const {
    for (auto& image : list()) {
        if (image.disk_sha256 == disk_sha256) {
            return image;
        }
    }
    return std::nullopt;
}

std::size_t ImageCache::remove(const std::string& name_or_digest) {
    std::size_t removed = 0;
    for (const auto& image : list()) {
        if (image.name == name_or_digest ||
            (name_or_digest.size() >= 6 && image.digest.rfind(name_or_digest, 0) == 0)) {
            fs::remove_all(image.directory);
            ++removed;
        }
    }
    return removed;
}

fs::path ImageCache::make_staging() const {
    const fs::path staging = root_ / (".staging-" + util::random_hex(8));
    fs::create_directories(staging);
    return staging;
}

namespace {

nlohmann::json entry_json(const CachedImage& metadata) {
    return {{"name", metadata.name},
            {"digest", metadata.digest},
            {"disk_sha256", metadata.disk_sha256},
            {"kernel_sha256", metadata.kernel_sha256},
            {"initrd_sha256", metadata.initrd_sha256},
            {"init", metadata.init}};
}

} // namespace

void ImageCache::record_boot_digests(CachedImage& image) const {
    if (!image.kernel_sha256.empty() && !image.initrd_sha256.empty()) {
        return;
    }
    image.kernel_sha256 = fresh_file_sha256(image.kernel(), {});
    image.initrd_sha256 = fresh_file_sha256(image.initrd(), {});
    write_json_atomically(image.directory / "image.json", entry_json(image));
}

CachedImage ImageCache::commit(const fs::path& staging, CachedImage metadata) const {
    const fs::path target = root_ / (metadata.name + "-" + metadata.digest);
    write_json_atomically(staging / "image.json", entry_json(metadata));
    std::error_code error;
    fs::remove_all(target, error);
    fs::rename(staging, target);
    metadata.directory = target;
    metadata.created = fs::last_write_time(target / "image.json");
    return metadata;
}

std::string fresh_file_sha256(const fs::path& file, const std::function<void()>& between_chunks) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw InfrastructureError("cannot read " + file.string() + ": " + std::strerror(errno));
    }
    Sha256 hash;
    std::string chunk(4 << 20, '\0');
    while (in) {
        in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        hash.update(std::string_view(chunk.data(), static_cast<std::size_t>(in.gcount())));
        if (between_chunks) {
            between_chunks();
        }
    }
    if (in.bad()) {
        throw InfrastructureError("cannot read " + file.string());
    }
    return hash.hex_digest();
}

std::string file_sha256(const fs::path& file, const fs::path& memo_root) {
    struct stat info {};
    if (::stat(file.c_str(), &info) != 0) {
        throw UsageError("cannot read image " + file.string() + ": " + std::strerror(errno),
                         "check the worker-image path");
    }
    const std::string key = std::to_string(info.st_dev) + ":" + std::to_string(info.st_ino) + ":" +
                            std::to_string(info.st_size) + ":" +
                            std::to_string(info.st_mtim.tv_sec) + "." +
                            std::to_string(info.st_mtim.tv_nsec);
    const fs::path memo_file = memo_root / "digests.json";
    nlohmann::json memo = read_json(memo_file);
    if (!memo.is_object()) {
        memo = nlohmann::json::object();
    }
    if (memo.contains(key) && memo[key].is_string()) {
        return memo[key].get<std::string>();
    }
    Sha256 hash;
    hash.update_file(file);
    const std::string digest = hash.hex_digest();
    memo[key] = digest;
    write_json_atomically(memo_file, memo);
    return digest;
}

} // namespace contractor::image

#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace contractor::image {

// One built image in the cache: a folder named NAME-DIGEST holding disk.qcow2, vmlinuz,
// initrd.img and image.json.
struct CachedImage {
    std::string name;
    std::string digest;      // of the recipe, its inputs and the included packages
    std::string disk_sha256; // of disk.qcow2, to recognise copies made with --output
    // Of vmlinuz and initrd.img, checked before each boot in the manager VM; empty in an
    // entry built before they were recorded.
    std::string kernel_sha256;
    std::string initrd_sha256;
    std::string init; // what the initrd starts
    std::filesystem::path directory;
    std::filesystem::file_time_type created;

    std::filesystem::path disk() const { return directory / "disk.qcow2"; }
    std::filesystem::path kernel() const { return directory / "vmlinuz"; }
    std::filesystem::path initrd() const { return directory / "initrd.img"; }
    // Bytes used on disk by the entry (sparse files count what they use).
    std::uint64_t size_on_disk() const;
};

// The content-addressed image cache: $XDG_CACHE_HOME/contractor/images (or ~/.cache/...).
class ImageCache {
public:
    explicit ImageCache(std::filesystem::path root);

    // The default location for this user.
    static std::filesystem::path default_root();

    const std::filesystem::path& root() const { return root_; }
    std::optional<CachedImage> find(const std::string& name, const std::string& digest) const;
    // The newest entry called `name`.
    std::optional<CachedImage> newest(const std::string& name) const;
    // The entry whose disk has this SHA-256: a file copied out of the cache is still known.
    std::optional<CachedImage> find_by_disk(const std::string& disk_sha256) const;
    std::vector<CachedImage> list() const;
    // Removes entries matching `name_or_digest` (a name, or a digest prefix); returns how many.
    std::size_t remove(const std::string& name_or_digest);

    // A fresh folder inside the cache for a build in progress (renamed into place by commit).
    std::filesystem::path make_staging() const;
    // Records the kernel's and initrd's digests of an entry built before they were recorded
    // (image.json rewritten); does nothing when it has them.
    void record_boot_digests(CachedImage& image) const;
    // Moves a finished staging folder into place and records its metadata.
    CachedImage commit(const std::filesystem::path& staging, CachedImage metadata) const;

private:
    std::filesystem::path root_;
};

// SHA-256 of a file, hex. Remembered per (device, inode, size, mtime) in the cache root so
// that an unchanged multi-hundred-megabyte image is hashed once.
std::string file_sha256(const std::filesystem::path& file, const std::filesystem::path& memo_root);
// The SHA-256 of `file`'s contents, read now, never from a memo. `between_chunks` (may be
// empty) runs after every 4 MiB read: a caller's budget check, which may throw to stop.
std::string fresh_file_sha256(const std::filesystem::path& file,
                              const std::function<void()>& between_chunks = {});

} // namespace contractor::image

#pragma once

// Shared by the extraction tests: hostile tar streams built entry by entry, and ways to look
// at what landed.
#include "transfer/safe_extract.hpp"
#include "transfer/workspace_marker.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <sys/stat.h>
#include <sys/sysmacros.h>

namespace contractor::test {

namespace fs = std::filesystem;

inline constexpr time_t entry_mtime = 1'500'000'000;

// Builds a tar stream entry by entry with libarchive's writer, which writes whatever it is
// given: "../x", "/abs", absolute symlinks, device nodes.
class TarBuilder {
public:
    TarBuilder() {
        archive_write_set_format_pax_restricted(archive_.get());
        archive_write_set_bytes_in_last_block(archive_.get(), 1);
        archive_write_open(archive_.get(), &data_, nullptr, &TarBuilder::append, nullptr);
    }
    TarBuilder& file(const std::string& path, const std::string& content, mode_t perm = 0644) {
        archive_entry* entry = start(path, AE_IFREG, perm);
        archive_entry_set_size(entry, static_cast<la_int64_t>(content.size()));
        write_header();
        if (!content.empty()) {
            REQUIRE(archive_write_data(archive_.get(), content.data(), content.size()) ==
                    static_cast<la_ssize_t>(content.size()));
        }
        return *this;
    }
    TarBuilder& directory(const std::string& path, mode_t perm = 0755) {
        start(path, AE_IFDIR, perm);
        write_header();
        return *this;
    }
    TarBuilder& symlink(const std::string& path, const std::string& target) {
        archive_entry_copy_symlink(start(path, AE_IFLNK, 0777), target.c_str());
        write_header();
        return *this;
    }
    TarBuilder& hardlink(const std::string& path, const std::string& target) {
        archive_entry_copy_hardlink(start(path, AE_IFREG, 0644), target.c_str());
        write_header();
        return *this;
    }
    // A FIFO, device node or socket.
    TarBuilder& special(const std::string& path, mode_t type) {
        archive_entry_set_rdev(start(path, type, 0666), makedev(1, 3));
        write_header();
        return *this;
    }
    // The stream, with its end-of-archive marker (the last 1024 bytes).
    std::string finish() {
        REQUIRE(archive_write_close(archive_.get()) == ARCHIVE_OK);
        return data_;
    }

private:
    static la_ssize_t append(archive*, void* client, const void* data, size_t size) {
        static_cast<std::string*>(client)->append(static_cast<const char*>(data), size);
        return static_cast<la_ssize_t>(size);
    }
    archive_entry* start(const std::string& path, mode_t type, mode_t perm) {
        archive_entry* entry = entry_.get();
        archive_entry_clear(entry);
        archive_entry_copy_pathname(entry, path.c_str());
        archive_entry_set_filetype(entry, type);
        archive_entry_set_perm(entry, perm);
        archive_entry_set_mtime(entry, entry_mtime, 0);
        // Ownership that must never be applied.
        archive_entry_set_uid(entry, 4242);
        archive_entry_copy_uname(entry, "intruder");
        return entry;
    }
    void write_header() {
        REQUIRE(archive_write_header(archive_.get(), entry_.get()) == ARCHIVE_OK);
    }

    std::string data_; // before archive_, which may still write to it while being freed
    std::unique_ptr<archive, decltype(&archive_write_free)> archive_{archive_write_new(),
                                                                     &archive_write_free};
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry_{archive_entry_new(),
                                                                         &archive_entry_free};
};

// A source reading `data` in uneven pieces; `delivered` counts the bytes handed out.
inline transfer::ByteSource source_of(const std::string& data, std::size_t* delivered = nullptr) {
    auto position = std::make_shared<std::size_t>(0);
    return [&data, position, delivered](char* buffer, std::size_t capacity) {
        const std::size_t size = std::min({capacity, data.size() - *position, std::size_t{65537}});
        std::memcpy(buffer, data.data() + *position, size);
        *position += size;
        if (delivered != nullptr) {
            *delivered = *position;
        }
        return size;
    };
}

inline transfer::ExtractResult extract(const fs::path& target, const std::string& tar,
                                       std::uint64_t limit = 1ULL << 32,
                                       transfer::ExtractOptions options = {}) {
    transfer::SafeExtractor extractor(target, limit, options);
    transfer::ExtractResult result = extractor.extract(source_of(tar));
    extractor.commit();
    return result;
}

// Every reason given for `path`, joined with "; ".
inline std::string reasons_for(const transfer::ExtractResult& result, const std::string& path) {
    std::string reasons;
    for (const auto& rejected : result.rejected) {
        if (rejected.path == path) {
            reasons += (reasons.empty() ? "" : "; ") + rejected.reason;
        }
    }
    return reasons;
}

inline std::set<std::string> names_in(const fs::path& directory) {
    std::set<std::string> names;
    for (const auto& entry : fs::directory_iterator(directory)) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

// Every path below `root` with its type: f(ile), d(irectory), l(ink); contractor's workspace
// marker at the root is not listed (the tests that care look for it).
inline std::map<std::string, char> tree_of(const fs::path& root) {
    std::map<std::string, char> tree;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.path() == root / transfer::workspace_marker_name) {
            continue;
        }
        const auto type = entry.symlink_status().type();
        tree[entry.path().lexically_relative(root).string()] =
            type == fs::file_type::directory ? 'd'
            : type == fs::file_type::symlink ? 'l'
            : type == fs::file_type::regular ? 'f'
                                             : '?';
    }
    return tree;
}

inline std::string read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline struct stat lstat_of(const fs::path& path) {
    struct stat status {};
    REQUIRE(lstat(path.c_str(), &status) == 0);
    return status;
}

inline mode_t perm_of(const fs::path& path) {
    return lstat_of(path).st_mode & 07777;
}

// Gives every directory below `root` u+rwx back, so the test's temporary directory can go.
inline void make_removable(const fs::path& root) {
    if (fs::is_directory(fs::symlink_status(root))) {
        fs::permissions(root, fs::perms::owner_all, fs::perm_options::add);
        for (const auto& entry : fs::directory_iterator(root)) {
            make_removable(entry.path());
        }
    }
}

} // namespace contractor::test

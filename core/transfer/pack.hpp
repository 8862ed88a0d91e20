#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace contractor::transfer {

// Receives the tar stream in order, in chunks of 256 KiB (the last one shorter). May throw;
// packing then stops and the exception reaches the caller of pack_tree.
using ByteSink = std::function<void(const char* data, std::size_t size)>;

// One directory tree to put in the stream.
struct PackSource {
    std::filesystem::path directory; // tree to pack; must exist and be a directory
    std::string prefix; // archive path prefix: "" or e.g. "src" (entries "src/...", plus "src/")
    // Glob patterns (fnmatch), .gitignore-lite: a pattern without '/' matches the name at any
    // depth, one with '/' matches the path relative to `directory` (a leading '/' is ignored),
    // a trailing '/' matches directories only. Excluded directories are not descended.
    std::vector<std::string> exclude;
    // Paths never packed, with everything under them (e.g. the workspace when it sits inside
    // the source tree). Matched by device and inode, so any spelling of the path works.
    std::vector<std::filesystem::path> skip;
};

// What went into the stream.
struct PackStats {
    std::uint64_t entries = 0; // files, directories, symlinks and hardlinks
    std::uint64_t bytes = 0;   // regular-file content
};

// Writes one POSIX (pax restricted) tar stream of all sources, in order, to `sink`. Names are
// sorted; regular files, directories and symlinks (never followed) are packed, other file
// types skipped; files with several links inside the stream become hardlinks. Modes and
// mtimes (whole seconds) are kept; owners are written as uid/gid 0 without names, for a
// receiver that does not restore ownership. Throws UsageError for a missing source directory,
// InfrastructureError when a file cannot be read.
PackStats pack_tree(const std::vector<PackSource>& sources, const ByteSink& sink);

} // namespace contractor::transfer

#pragma once

#include "transfer/handles.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace contractor::transfer {

// Fills `buffer` with up to `capacity` bytes of the stream; returns how many, 0 at the end.
// May throw; extraction then stops and the exception reaches the caller of extract().
using ByteSource = std::function<std::size_t(char* buffer, std::size_t capacity)>;

// An entry left out of the extracted tree, or changed on the way in, and why in plain words.
struct Rejected {
    std::string path;   // as named in the stream
    std::string reason; // e.g. "path leaves the workspace", "setuid bit removed"
};

// What extract() did.
struct ExtractResult {
    std::uint64_t entries = 0; // entries present in the extracted tree
    std::uint64_t bytes = 0;   // regular-file content written
    std::vector<Rejected> rejected;
};

// The stream carried more file content than the export-size limit allows (exit code 3).
class ExportTooLarge : public Error {
public:
    ExportTooLarge(std::uint64_t limit, std::uint64_t bytes_seen);
    // The limit, in bytes.
    std::uint64_t limit() const { return limit_; }
    // File content declared by the stream up to and including the entry that crossed it.
    std::uint64_t bytes_seen() const { return bytes_seen_; }

private:
    std::uint64_t limit_;
    std::uint64_t bytes_seen_;
};

// Extracts a tar stream that comes from an untrusted machine (the workspace coming back from a
// worker VM) so that nothing lands outside `target` and `target` is replaced only by a
// complete tree. Nothing is followed through a symlink; ownership is never applied.
class SafeExtractor {
public:
    // Creates the temporary directory beside `target` (same parent, ".NAME.contractor-XXXXXX"),
    // to be filled with at most `size_limit` bytes of file content.
    SafeExtractor(std::filesystem::path target, std::uint64_t size_limit);
    // Removes the temporary directory unless commit() succeeded; never touches `target`.
    ~SafeExtractor();
    SafeExtractor(const SafeExtractor&) = delete;
    SafeExtractor& operator=(const SafeExtractor&) = delete;

    // Reads the whole tar stream from `source` into the temporary directory; entries that could
    // escape it or have no place in a workspace are left out and reported. Throws
    // ExportTooLarge as soon as a header takes the content past the limit (nothing more is
    // read), InfrastructureError for a stream that is corrupt or ends before its end marker.
    ExtractResult extract(const ByteSource& source);
    // Puts the extracted tree in place of `target` atomically (rename when `target` does not
    // exist, exchange then removal of the old tree when it does). Only after extract().
    void commit();

    // The temporary directory being filled.
    const std::filesystem::path& temporary_directory() const { return temporary_; }

private:
    enum class State { created, extracting, extracted, committed };

    std::filesystem::path target_;
    std::filesystem::path temporary_;
    std::uint64_t size_limit_;
    Fd parent_; // the directory holding target_ and temporary_
    Fd root_;   // temporary_
    State state_ = State::created;
};

} // namespace contractor::transfer

#pragma once

#include "transfer/handles.hpp"
#include "util/error.hpp"

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace contractor::transfer {

class TarReader;
class TreeWriter;

// Fills `buffer` with up to `capacity` bytes of the stream; returns how many, 0 at the end.
// May throw; extraction then stops and the exception reaches the caller of extract().
using ByteSource = std::function<std::size_t(char* buffer, std::size_t capacity)>;

// An entry left out of the extracted tree, or changed on the way in, and why in plain words.
struct Rejected {
    std::string path;   // as named in the stream
    std::string reason; // e.g. "path leaves the workspace", "setuid bit removed"
};

// The most refused entries listed one by one (in the summary and the report): a hostile stream
// can hold millions; the rest are counted.
inline constexpr std::size_t max_rejected_listed = 100;

// What extract() did.
struct ExtractResult {
    std::uint64_t entries = 0;      // entries present in the extracted tree
    std::uint64_t bytes = 0;        // regular-file content written
    std::vector<Rejected> rejected; // the first max_rejected_listed of them
    std::uint64_t rejected_total = 0;
    // Whether the stream was one of changes applied to the base (extract_base), and then how
    // many paths it removed and how many entries it carried.
    bool changes = false;
    std::uint64_t removed = 0;
    std::uint64_t changed = 0;
};

// What an extraction lets through beyond the rules that always hold.
struct ExtractOptions {
    // Config `export: {allow-git: true}`: keep .git folders, .git files and bare-repository
    // layouts, which are refused by default (git runs what their config names).
    bool allow_git = false;
};

// The reasons given for refused git metadata and for a forged workspace marker, as they appear
// in Rejected::reason (the CLI adds a hint when it sees one of the git reasons).
inline constexpr std::string_view git_folder_reason =
    ".git folder: git would run the commands its config and hooks name; left out with "
    "everything in it";
inline constexpr std::string_view git_link_reason =
    ".git file or link: it points git at a repository whose config can name commands to run";
inline constexpr std::string_view bare_repository_reason =
    "bare git repository layout (HEAD beside objects/ and refs/, or beside commondir): git "
    "would run the commands its config names; HEAD left out";
inline constexpr std::string_view marker_reason =
    "contractor's workspace marker: only contractor writes it";

// A stream of changes (see SafeExtractor::extract_base) starts with an entry of this name: the
// paths the build removed, each ended by a NUL byte. The name lies below the workspace marker,
// which no other entry may use.
inline constexpr std::string_view removed_list_name = ".contractor-workspace/removed";
// The longest list of removed paths taken: more is a broken or hostile worker.
inline constexpr std::size_t max_removed_list = 64 * 1024 * 1024;

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

// The target is not a workspace contractor may replace: not missing, not an empty folder, not
// a folder with contractor's marker (exit code 2). Nothing was touched.
class ForeignWorkspace : public UsageError {
public:
    ForeignWorkspace(const std::filesystem::path& target, const std::string& what_it_is);
};

// Removes what killed runs left beside `target`: the temporary folders of extractions whose
// process is gone (".NAME.contractor-PID-XXXXXX": a half-written tree, or the old tree a run
// swapped out and was killed before removing). Never follows a symlink. Returns how many.
std::size_t remove_stale_temporaries(const std::filesystem::path& target);

// Extracts a tar stream that comes from an untrusted machine (the workspace coming back from a
// worker VM) so that nothing lands outside `target` and `target` is replaced only by a
// complete tree. Nothing is followed through a symlink; ownership is never applied.
class SafeExtractor {
public:
    // Creates the temporary directory beside `target` (same parent, ".NAME.contractor-XXXXXX"),
    // to be filled with at most `size_limit` bytes of file content.
    SafeExtractor(std::filesystem::path target, std::uint64_t size_limit,
                  ExtractOptions options = {});
    // Removes the temporary directory unless commit() succeeded; never touches `target`.
    ~SafeExtractor();
    SafeExtractor(const SafeExtractor&) = delete;
    SafeExtractor& operator=(const SafeExtractor&) = delete;

    // Extracts the stream the worker was given (the CLI's own input) into the temporary
    // directory, under the same rules as extract(), as the tree that a stream of changes is
    // applied to. Throws as extract() does; the tree is then dropped, and extract() takes whole
    // streams only (it throws the same error for a stream of changes). At most once, before
    // extract(); may run in another thread than extract(), which must not start before it ends.
    void extract_base(const ByteSource& source);
    // Whether extract_base() succeeded.
    bool has_base() const { return state_ == State::based; }

    // Reads the whole tar stream from `source` into the temporary directory; entries that could
    // escape it, have no place in a workspace, or would make git run commands on the host
    // (unless allow_git) are left out and reported (rules in tree_writer.hpp). After
    // extract_base(), a stream whose first entry is the list of removed paths
    // (removed_list_name) is applied to that tree as changes: the paths go, the entries after
    // it replace or add, and export-size counts the resulting tree; any other stream replaces
    // the base whole. Throws
    // ExportTooLarge as soon as a header takes the content past the limit (nothing more is
    // read), InfrastructureError for a stream that is corrupt or ends before its end marker.
    ExtractResult extract(const ByteSource& source);
    // Writes contractor's workspace marker into the extracted tree and puts the tree in place
    // of `target` atomically (rename when `target` does not exist, exchange then removal of the
    // old tree when it does). Only a missing target, an empty folder or a folder with the
    // marker is replaced (checked again here, without following a symlink): anything else
    // throws ForeignWorkspace and is left untouched. Only after extract().
    void commit();

    // The temporary directory being filled.
    const std::filesystem::path& temporary_directory() const { return temporary_; }

private:
    enum class State { created, based, extracting, extracted, committed };

    void start_tree();
    void drop_tree();
    void apply_removed_list(TarReader& reader);

    std::filesystem::path target_;
    std::filesystem::path temporary_;
    std::uint64_t size_limit_;
    ExtractOptions options_;
    Fd parent_; // the directory holding target_ and temporary_
    Fd root_;   // temporary_
    State state_ = State::created;
    ExtractResult result_;
    std::unique_ptr<TreeWriter> writer_; // fills root_, from extract_base() to extract()
    std::exception_ptr base_error_;      // why extract_base() failed: thrown for changes
};

} // namespace contractor::transfer

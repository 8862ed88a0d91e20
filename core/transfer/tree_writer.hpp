#pragma once

#include "transfer/handles.hpp"
#include "transfer/safe_extract.hpp"
#include "transfer/tar_reader.hpp"

#include <ctime>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace contractor::transfer {

// Writes the entries of one untrusted tar stream below a directory, applying the rules of
// SafeExtractor: every path component is opened descriptor-relative without following
// symlinks, and whatever could reach outside the directory is left out and reported.
//
// What could make the host run code is refused too, unless `options.allow_git`: git runs the
// commands that a repository's config names (core.fsmonitor, core.pager, aliases, hooks) when
// a user types `git status` in a folder it takes for a work tree or a repository, so
//  - an entry with a path component ".git" (ASCII case ignored: the tree may be copied to a
//    case-insensitive file system) is refused: a folder with everything below it, reported
//    once; a file or symlink (a "gitdir:" pointer) on its own;
//  - a folder that git would take for a bare repository loses its HEAD. Git needs a HEAD (a
//    file or symlink) beside objects and refs, or beside commondir, whatever their types
//    (access() follows symlinks). Entries arrive in any order and objects/ may only appear
//    implicitly as the parent of a later entry, so this is decided in finish(), on the tree
//    as extracted: every folder that received a HEAD entry is listed, and when the other
//    names are there too (ASCII case ignored), its HEAD entries are removed and reported.
//    The rest of the folder stays: without HEAD it is inert data to git.
// An entry named like contractor's workspace marker at the root, or below a folder of that
// name, is refused: only the extractor's caller writes the marker.
class TreeWriter {
public:
    // Writes below the directory open as `root_fd` (at `root_path`, for messages), counting
    // file content against `size_limit` and reporting into `result`.
    TreeWriter(int root_fd, std::filesystem::path root_path, std::uint64_t size_limit,
               const ExtractOptions& options, ExtractResult& result);
    TreeWriter(const TreeWriter&) = delete;
    TreeWriter& operator=(const TreeWriter&) = delete;

    // Places the entry `reader` has just read, reading its data; reports it when refused.
    // Throws ExportTooLarge, and InfrastructureError when the disk refuses a write.
    void add(TarReader& reader, archive_entry* entry);
    // Removes the entry `name` (a path as a stream names it) and everything below it, for a
    // stream of changes against a tree extracted before (SafeExtractor::extract_base): never
    // through a symlink, nothing when it is not there. The content of a file that goes with its
    // last link no longer counts against the size limit. Refused names are reported.
    void remove(const std::string& name);
    // The file content in the tree, as declared by the entries that are still there.
    std::uint64_t content_bytes() const { return declared_bytes_; }
    // After the last entry: removes the HEAD of bare-repository layouts and symlinks that
    // resolve outside the tree, then gives the directories their modes and mtimes, deepest
    // first.
    void finish();

private:
    // Records a refused or changed entry: listed up to max_rejected_listed, counted always.
    void reject(const std::string& path, const std::string& reason);
    using Parts = std::vector<std::string>;
    struct DirectoryMetadata {
        mode_t mode;
        timespec times[2];
    };

    void place(TarReader& reader, archive_entry* entry);
    bool refuse_git_entry(const Parts& parts, bool directory);
    void refuse_bare_repositories();
    void add_file(TarReader& reader, archive_entry* entry, const Parts& parts);
    void add_directory(archive_entry* entry, const Parts& parts);
    void add_symlink(archive_entry* entry, const Parts& parts);
    void add_hardlink(const char* link, const Parts& parts);
    int open_parent(const Parts& parts);
    bool clear_slot(int parent_fd, const Parts& parts, bool directory);
    mode_t permissions(archive_entry* entry);
    void verify_symlinks();
    void apply_directory_metadata();
    [[noreturn]] void fail(const char* action, const std::string& path, int error) const;

    int root_fd_;
    std::filesystem::path root_path_;
    std::uint64_t size_limit_;
    ExtractOptions options_;
    std::uint64_t declared_bytes_ = 0; // file sizes from the headers so far
    ExtractResult& result_;
    std::string current_name_; // of the entry being placed, as the stream spells it

    void forget_below(const std::string& path);
    void uncount_file(const std::string& path);

    std::map<std::string, std::uint64_t> files_;  // regular files (hardlink targets) -> size
    std::map<std::string, std::string> symlinks_; // kept symlinks -> name in the stream
    std::set<std::string> refused_symlinks_;      // nothing is created below these
    std::map<std::string, DirectoryMetadata> directories_; // final metadata, applied last
    // One path per .git folder reported (its contents are not), and per folder that received a
    // HEAD entry: like the sets above, at most one string per entry of the stream, which has
    // no entry limit of its own (only export-size on file content).
    std::set<std::string> refused_git_folders_;
    std::set<std::string> head_folders_;
    // The parent directory of the previous entry: streams list siblings together.
    std::string cached_parent_path_;
    Fd cached_parent_;
};

} // namespace contractor::transfer

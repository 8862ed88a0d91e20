#include "transfer/tree_writer.hpp"

#include "transfer/directory.hpp"
#include "transfer/workspace_marker.hpp"
#include "util/escape.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/limits.h> // PATH_MAX
#include <linux/openat2.h>
#include <string_view>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>

namespace contractor::transfer {
namespace {

// Deeper paths are refused: removing a tree holds one descriptor per level, and no real
// workspace comes near this.
constexpr std::size_t max_depth = 256;

constexpr std::uint64_t beneath = RESOLVE_BENEATH;
constexpr std::uint64_t beneath_without_symlinks = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;

// Why an entry is left out. Thrown from wherever the problem shows and caught once per entry
// in add(), since every refusal ends the entry the same way.
struct Rejection {
    std::string reason;
    std::string path = {}; // what is reported as refused, when not the entry's own name
};

// Names compared as a case-insensitive file system would compare ASCII names.
bool same_name_ignoring_case(std::string_view name, std::string_view wanted) {
    return name.size() == wanted.size() &&
           std::equal(name.begin(), name.end(), wanted.begin(), [](char a, char b) {
               const auto lower = [](char c) {
                   return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
               };
               return lower(a) == lower(b);
           });
}

// The components of an entry name, "." and empty ones dropped. Refuses names that are empty,
// absolute or contain "..", even a ".." that would stay inside: no honest writer needs one.
std::vector<std::string> split_entry_path(std::string_view name) {
    if (name.empty()) {
        throw Rejection{"empty name"};
    }
    if (name.front() == '/') {
        throw Rejection{"absolute path"};
    }
    if (name.size() >= PATH_MAX) {
        throw Rejection{"path too long"};
    }
    std::vector<std::string> parts;
    for (std::size_t start = 0; start <= name.size();) {
        const std::size_t end = std::min(name.find('/', start), name.size());
        const std::string_view part = name.substr(start, end - start);
        if (part == "..") {
            throw Rejection{"path leaves the workspace"};
        }
        if (!part.empty() && part != ".") {
            parts.emplace_back(part);
        }
        start = end + 1;
    }
    if (parts.size() > max_depth) {
        throw Rejection{"path too deep"};
    }
    return parts;
}

// The first `count` parts joined with '/'; "." for none.
std::string join(const std::vector<std::string>& parts, std::size_t count) {
    std::string joined;
    for (std::size_t i = 0; i < count; ++i) {
        if (i > 0) {
            joined += '/';
        }
        joined += parts[i];
    }
    return joined.empty() ? "." : joined;
}

std::string join(const std::vector<std::string>& parts) {
    return join(parts, parts.size());
}

// Whether a relative symlink `target`, in a directory `depth` levels below the root, names
// something inside the root when read lexically (the physical check comes in finish()).
bool stays_inside(std::size_t depth, std::string_view target) {
    for (std::size_t start = 0; start <= target.size();) {
        const std::size_t end = std::min(target.find('/', start), target.size());
        const std::string_view part = target.substr(start, end - start);
        if (part == "..") {
            if (depth == 0) {
                return false;
            }
            --depth;
        } else if (!part.empty() && part != ".") {
            ++depth;
        }
        start = end + 1;
    }
    return true;
}

// The access time is left alone; the modification time comes from the entry when it has one.
void entry_times(archive_entry* entry, timespec (&times)[2]) {
    times[0] = {0, UTIME_OMIT};
    times[1] = {0, UTIME_OMIT};
    if (archive_entry_mtime_is_set(entry)) {
        times[1] = {archive_entry_mtime(entry), archive_entry_mtime_nsec(entry)};
    }
}

std::string special_bits_removed(mode_t mode) {
    std::string names;
    int count = 0;
    for (const auto& [bit, name] : {std::pair{S_ISUID, "setuid"}, std::pair{S_ISGID, "setgid"},
                                    std::pair{S_ISVTX, "sticky"}}) {
        if ((mode & bit) != 0) {
            names += (count++ > 0 ? "/" : "") + std::string(name);
        }
    }
    return names + (count > 1 ? " bits removed" : " bit removed");
}

int write_all(int fd, const char* data, std::size_t size, off_t offset) {
    while (size > 0) {
        const ssize_t written = pwrite(fd, data, size, offset);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errno;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
        offset += written;
    }
    return 0;
}

} // namespace

TreeWriter::TreeWriter(int root_fd, std::filesystem::path root_path, std::uint64_t size_limit,
                       const ExtractOptions& options, ExtractResult& result)
    : root_fd_(root_fd), root_path_(std::move(root_path)), size_limit_(size_limit),
      options_(options), result_(result) {}

void TreeWriter::add(TarReader& reader, archive_entry* entry) {
    const char* name = archive_entry_pathname(entry);
    if (name == nullptr) {
        name = archive_entry_pathname_utf8(entry);
    }
    current_name_ = name != nullptr ? name : "";
    try {
        place(reader, entry);
    } catch (const Rejection& rejection) {
        reject(rejection.path.empty() ? current_name_ : rejection.path, rejection.reason);
    }
}

void TreeWriter::reject(const std::string& path, const std::string& reason) {
    ++result_.rejected_total;
    if (result_.rejected.size() < max_rejected_listed) {
        result_.rejected.push_back({path, reason});
    }
}

void TreeWriter::place(TarReader& reader, archive_entry* entry) {
    const char* hardlink = archive_entry_hardlink(entry);
    const mode_t type = archive_entry_filetype(entry);
    if (hardlink == nullptr) {
        switch (type) {
        case AE_IFCHR:
        case AE_IFBLK:
            throw Rejection{"device node"};
        case AE_IFIFO:
            throw Rejection{"FIFO"};
        case AE_IFSOCK:
            throw Rejection{"socket"};
        case AE_IFREG:
        case AE_IFDIR:
        case AE_IFLNK:
            break;
        default:
            throw Rejection{"unsupported entry type"};
        }
    }
    const Parts parts = split_entry_path(current_name_);
    if (parts.empty()) {
        // "./": the workspace itself, which exists already; its metadata is not taken.
        if (type == AE_IFDIR && hardlink == nullptr) {
            return;
        }
        throw Rejection{"names the workspace itself"};
    }
    // Also below it: a folder of that name would keep the real marker from being written.
    if (parts[0] == workspace_marker_name) {
        throw Rejection{std::string(marker_reason)};
    }
    const bool directory = type == AE_IFDIR && hardlink == nullptr;
    if (!options_.allow_git && refuse_git_entry(parts, directory)) {
        return; // inside a .git folder that is reported already
    }
    if (hardlink != nullptr) {
        add_hardlink(hardlink, parts);
    } else if (type == AE_IFREG) {
        add_file(reader, entry, parts);
    } else if (type == AE_IFDIR) {
        add_directory(entry, parts);
    } else {
        add_symlink(entry, parts);
    }
    if (!options_.allow_git && !directory && same_name_ignoring_case(parts.back(), "HEAD")) {
        head_folders_.insert(join(parts, parts.size() - 1));
    }
    ++result_.entries;
}

// Throws the rejection of an entry with a ".git" component. Returns true for an entry inside a
// .git folder that was reported already (left out without another report), false for an
// entry without such a component.
bool TreeWriter::refuse_git_entry(const Parts& parts, bool directory) {
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (!same_name_ignoring_case(parts[i], ".git")) {
            continue;
        }
        if (i + 1 == parts.size() && !directory) {
            throw Rejection{std::string(git_link_reason)};
        }
        const std::string folder = join(parts, i + 1);
        if (!refused_git_folders_.insert(folder).second) {
            return true;
        }
        // Named as a folder ("a/.git"), whichever of its entries came first.
        throw Rejection{std::string(git_folder_reason), folder};
    }
    return false;
}

void TreeWriter::add_file(TarReader& reader, archive_entry* entry, const Parts& parts) {
    const la_int64_t size = archive_entry_size_is_set(entry) ? archive_entry_size(entry) : 0;
    if (size < 0) {
        throw Rejection{"invalid size"};
    }
    // Checked on the header, before any data is read: an oversized stream stops here.
    if (static_cast<std::uint64_t>(size) > size_limit_ - declared_bytes_) {
        throw ExportTooLarge(size_limit_, declared_bytes_ + static_cast<std::uint64_t>(size));
    }
    declared_bytes_ += static_cast<std::uint64_t>(size);

    const std::string path = join(parts);
    const int parent = open_parent(parts);
    clear_slot(parent, parts, false);
    // Created private and given its mode once written; O_EXCL never follows a symlink.
    const Fd file(openat(parent, parts.back().c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, S_IRUSR | S_IWUSR));
    if (!file) {
        fail("create", path, errno);
    }
    const char* data = nullptr;
    std::size_t length = 0;
    std::int64_t offset = 0;
    std::int64_t end = 0;
    while (reader.read_block(data, length, offset)) {
        if (const int error = write_all(file.get(), data, length, offset)) {
            fail("write", path, error);
        }
        end = std::max(end, offset + static_cast<std::int64_t>(length));
        result_.bytes += length;
    }
    // A sparse file can end in a hole, which has no data block.
    if (end < size && ftruncate(file.get(), size) != 0) {
        fail("write", path, errno);
    }
    timespec times[2];
    entry_times(entry, times);
    if (fchmod(file.get(), permissions(entry)) != 0 || futimens(file.get(), times) != 0) {
        fail("set the mode or mtime of", path, errno);
    }
    files_.insert_or_assign(path, static_cast<std::uint64_t>(size));
    refused_symlinks_.erase(path);
}

void TreeWriter::add_directory(archive_entry* entry, const Parts& parts) {
    const std::string path = join(parts);
    const int parent = open_parent(parts);
    // Created private and writable: it has to be filled before it gets its own mode.
    if (!clear_slot(parent, parts, true) && mkdirat(parent, parts.back().c_str(), S_IRWXU) != 0) {
        fail("create", path, errno);
    }
    DirectoryMetadata metadata{permissions(entry), {}};
    entry_times(entry, metadata.times);
    directories_.insert_or_assign(path, metadata);
    refused_symlinks_.erase(path);
}

void TreeWriter::add_symlink(archive_entry* entry, const Parts& parts) {
    const std::string path = join(parts);
    try {
        const char* target = archive_entry_symlink(entry);
        if (target == nullptr || *target == '\0') {
            throw Rejection{"symlink without a target"};
        }
        if (*target == '/') {
            throw Rejection{"symlink points outside the workspace (absolute target)"};
        }
        if (!stays_inside(parts.size() - 1, target)) {
            throw Rejection{"symlink points outside the workspace"};
        }
        const int parent = open_parent(parts);
        clear_slot(parent, parts, false);
        if (symlinkat(target, parent, parts.back().c_str()) != 0) {
            fail("create", path, errno);
        }
        timespec times[2];
        entry_times(entry, times);
        if (utimensat(parent, parts.back().c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
            fail("set the mtime of", path, errno);
        }
    } catch (const Rejection&) {
        // Later entries below this path would otherwise land in a directory made in its place,
        // which is not what the stream meant.
        refused_symlinks_.insert(path);
        throw;
    }
    symlinks_.insert_or_assign(path, current_name_);
    refused_symlinks_.erase(path);
}

void TreeWriter::add_hardlink(const char* link, const Parts& parts) {
    Parts target;
    try {
        target = split_entry_path(link);
    } catch (const Rejection&) {
        throw Rejection{"hardlink to a file outside the workspace"};
    }
    const std::string path = join(parts);
    const std::string target_path = join(target);
    if (!files_.contains(target_path)) {
        throw Rejection{"hardlink to something that is not a file extracted before it"};
    }
    if (target_path == path) {
        return; // a link to itself: the file is already there
    }
    // The target's directory, reached without any symlink, and the target checked again: the
    // bookkeeping in files_ is not taken on trust for a link.
    const Fd target_parent = open_beneath(root_fd_, join(target, target.size() - 1),
                                          O_PATH | O_DIRECTORY, beneath_without_symlinks);
    struct stat status {};
    if (!target_parent ||
        fstatat(target_parent.get(), target.back().c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(status.st_mode)) {
        throw Rejection{"hardlink to something that is not a file extracted before it"};
    }
    const int parent = open_parent(parts);
    clear_slot(parent, parts, false);
    if (linkat(target_parent.get(), target.back().c_str(), parent, parts.back().c_str(), 0) != 0) {
        fail("create", path, errno);
    }
    // Its content was counted with the file it links to.
    files_.insert_or_assign(path, 0);
    refused_symlinks_.erase(path);
}

// The directory that will hold the entry, created as needed one component at a time, each
// opened with O_NOFOLLOW relative to the one before: a symlink anywhere on the way refuses the
// entry instead of being followed.
int TreeWriter::open_parent(const Parts& parts) {
    const std::size_t depth = parts.size() - 1;
    if (depth == 0) {
        return root_fd_;
    }
    const std::string parent_path = join(parts, depth);
    if (cached_parent_ && parent_path == cached_parent_path_) {
        return cached_parent_.get();
    }
    Fd current;
    int at = root_fd_;
    for (std::size_t i = 0; i < depth; ++i) {
        const char* part = parts[i].c_str();
        constexpr int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
        Fd next(openat(at, part, flags));
        if (!next && errno == ENOENT) {
            if (refused_symlinks_.contains(join(parts, i + 1))) {
                throw Rejection{"a parent directory is a symlink"};
            }
            if (mkdirat(at, part, S_IRWXU | S_IRGRP | S_IXGRP | S_IROTH | S_IXOTH) != 0) {
                fail("create", join(parts, i + 1), errno);
            }
            next.reset(openat(at, part, flags));
        }
        if (!next) {
            const int error = errno;
            struct stat status {};
            if (fstatat(at, part, &status, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(status.st_mode)) {
                throw Rejection{S_ISLNK(status.st_mode) ? "a parent directory is a symlink"
                                                        : "a parent directory is not a directory"};
            }
            fail("open", join(parts, i + 1), error);
        }
        current = std::move(next);
        at = current.get();
    }
    // Safe to keep: directories are never replaced during extraction, and remove() forgets it.
    cached_parent_path_ = parent_path;
    cached_parent_ = std::move(current);
    return cached_parent_.get();
}

// Makes room for the entry's last component in `parent_fd`: a file or symlink already there is
// replaced (the later entry wins), a directory is kept when the entry is a directory too
// (returns true: they merge) and refuses the entry otherwise.
bool TreeWriter::clear_slot(int parent_fd, const Parts& parts, bool directory) {
    const char* leaf = parts.back().c_str();
    struct stat status {};
    if (fstatat(parent_fd, leaf, &status, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return false;
        }
        fail("inspect", join(parts), errno);
    }
    if (S_ISDIR(status.st_mode)) {
        if (directory) {
            return true;
        }
        // Replacing it would throw away what earlier entries put in it.
        throw Rejection{"a directory of that name is already there"};
    }
    if (S_ISREG(status.st_mode) && status.st_nlink == 1) {
        uncount_file(join(parts));
    }
    if (unlinkat(parent_fd, leaf, 0) != 0) {
        fail("replace", join(parts), errno);
    }
    files_.erase(join(parts));
    symlinks_.erase(join(parts));
    return false;
}

// A file whose last link goes: its declared content no longer counts.
void TreeWriter::uncount_file(const std::string& path) {
    const auto file = files_.find(path);
    if (file != files_.end()) {
        declared_bytes_ -= std::min(declared_bytes_, file->second);
    }
}

void TreeWriter::remove(const std::string& name) {
    current_name_ = name;
    Parts parts;
    try {
        parts = split_entry_path(name);
        if (parts.empty()) {
            throw Rejection{"names the workspace itself"};
        }
    } catch (const Rejection& rejection) {
        reject(name, "removal refused: " + rejection.reason);
        return;
    }
    // Directories may go now: the parent kept open for the next entry may be one of them.
    cached_parent_.reset();
    cached_parent_path_.clear();
    const std::string path = join(parts);
    const Fd parent = open_beneath(root_fd_, join(parts, parts.size() - 1), O_RDONLY | O_DIRECTORY,
                                   beneath_without_symlinks);
    struct stat status {};
    if (!parent || fstatat(parent.get(), parts.back().c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
        return; // not there (or not reachable without a symlink): nothing to remove
    }
    if (S_ISDIR(status.st_mode)) {
        // Files below that hold their content alone (no other link) stop counting.
        const std::string prefix = path + "/";
        for (auto file = files_.lower_bound(prefix);
             file != files_.end() && file->first.compare(0, prefix.size(), prefix) == 0; ++file) {
            const Fd held = open_beneath(root_fd_, file->first, O_PATH, beneath_without_symlinks);
            struct stat file_status {};
            if (held && fstat(held.get(), &file_status) == 0 && S_ISREG(file_status.st_mode) &&
                file_status.st_nlink == 1) {
                declared_bytes_ -= std::min(declared_bytes_, file->second);
            }
        }
        if (const int error = remove_tree(parent.get(), parts.back())) {
            fail("remove", path, error);
        }
    } else {
        if (S_ISREG(status.st_mode) && status.st_nlink == 1) {
            uncount_file(path);
        }
        if (unlinkat(parent.get(), parts.back().c_str(), 0) != 0) {
            fail("remove", path, errno);
        }
    }
    forget_below(path);
}

// Drops the bookkeeping of `path` and of everything below it.
void TreeWriter::forget_below(const std::string& path) {
    const std::string prefix = path + "/";
    const auto below = [&prefix](const std::string& other) {
        return other.compare(0, prefix.size(), prefix) == 0;
    };
    const auto erase = [&](auto& container) {
        std::size_t erased = container.erase(path);
        for (auto item = container.lower_bound(prefix); item != container.end();) {
            const std::string& key = [&]() -> const std::string& {
                if constexpr (std::is_same_v<std::decay_t<decltype(*item)>, std::string>) {
                    return *item;
                } else {
                    return item->first;
                }
            }();
            if (!below(key)) {
                break;
            }
            item = container.erase(item);
            ++erased;
        }
        return erased;
    };
    const std::size_t entries = erase(files_) + erase(symlinks_) + erase(directories_);
    result_.entries -= std::min<std::uint64_t>(result_.entries, entries);
    erase(head_folders_);
}

mode_t TreeWriter::permissions(archive_entry* entry) {
    const mode_t mode = archive_entry_perm(entry);
    if ((mode & (S_ISUID | S_ISGID | S_ISVTX)) != 0) {
        reject(current_name_, special_bits_removed(mode));
    }
    return mode & (S_IRWXU | S_IRWXG | S_IRWXO);
}

void TreeWriter::finish() {
    cached_parent_.reset();
    if (!options_.allow_git) {
        refuse_bare_repositories();
    }
    verify_symlinks();
    apply_directory_metadata();
}

// Removes HEAD from every folder that git would take for a bare repository (see the class
// comment), judged on the tree as it stands after the last entry.
void TreeWriter::refuse_bare_repositories() {
    for (const std::string& folder : head_folders_) {
        const Fd directory =
            open_beneath(root_fd_, folder, O_RDONLY | O_DIRECTORY, beneath_without_symlinks);
        std::vector<std::string> names;
        if (!directory) {
            fail("open", folder, errno);
        }
        if (const int error = list_directory(directory.get(), names)) {
            fail("list", folder, error);
        }
        const auto has = [&names](std::string_view wanted) {
            return std::any_of(names.begin(), names.end(), [wanted](const std::string& name) {
                return same_name_ignoring_case(name, wanted);
            });
        };
        if (!(has("objects") && has("refs")) && !has("commondir")) {
            continue;
        }
        for (const std::string& name : names) {
            struct stat status {};
            if (!same_name_ignoring_case(name, "HEAD") ||
                fstatat(directory.get(), name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0 ||
                S_ISDIR(status.st_mode)) {
                continue; // a HEAD folder is no HEAD to git
            }
            const std::string path = folder == "." ? name : folder + "/" + name;
            if (unlinkat(directory.get(), name.c_str(), 0) != 0) {
                fail("remove", path, errno);
            }
            files_.erase(path);
            symlinks_.erase(path);
            reject(path, std::string(bare_repository_reason));
            --result_.entries;
        }
    }
}

// Resolves every kept symlink inside the tree as the kernel would, through any chain of other
// links: the lexical check on each target alone misses chains like "x -> ..", "y -> x/..".
void TreeWriter::verify_symlinks() {
    for (const auto& [path, name] : symlinks_) {
        const Fd resolved = open_beneath(root_fd_, path, O_PATH, beneath);
        if (resolved || errno == ENOENT || errno == ENOTDIR) {
            continue; // inside the tree, possibly dangling, which is harmless
        }
        const int error = errno;
        const std::string reason =
            error == EXDEV   ? "symlink points outside the workspace"
            : error == ELOOP ? "symlink loop"
                             : std::string("symlink cannot be checked: ") + std::strerror(error);
        const Parts parts = split_entry_path(path);
        const Fd parent = open_beneath(root_fd_, join(parts, parts.size() - 1),
                                       O_PATH | O_DIRECTORY, beneath_without_symlinks);
        if (!parent || unlinkat(parent.get(), parts.back().c_str(), 0) != 0) {
            fail("remove", path, errno);
        }
        reject(name, reason);
        --result_.entries;
    }
}

// Deepest first, so that a directory made read-only (or inaccessible) no longer needs to be
// entered; and last, since adding to a directory changes its mtime.
void TreeWriter::apply_directory_metadata() {
    std::vector<std::pair<std::size_t, const std::string*>> order;
    for (const auto& [path, metadata] : directories_) {
        order.emplace_back(std::count(path.begin(), path.end(), '/'), &path);
    }
    std::sort(order.begin(), order.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [depth, path] : order) {
        const DirectoryMetadata& metadata = directories_.at(*path);
        const Fd directory =
            open_beneath(root_fd_, *path, O_RDONLY | O_DIRECTORY, beneath_without_symlinks);
        if (!directory || fchmod(directory.get(), metadata.mode) != 0 ||
            futimens(directory.get(), metadata.times) != 0) {
            fail("set the mode or mtime of", *path, errno);
        }
    }
}

void TreeWriter::fail(const char* action, const std::string& path, int error) const {
    // The path comes from the worker: escaped before it reaches a message.
    throw InfrastructureError(std::string("cannot ") + action + " " +
                                  util::escape_name((root_path_ / path).string()) + ": " +
                                  std::strerror(error),
                              error == ENOSPC || error == EDQUOT
                                  ? "free some space on that file system, then run the build again"
                                  : "");
}

} // namespace contractor::transfer

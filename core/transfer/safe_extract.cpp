#include "transfer/safe_extract.hpp"

#include "transfer/directory.hpp"
#include "transfer/tar_reader.hpp"
#include "transfer/tree_writer.hpp"
#include "transfer/workspace_marker.hpp"
#include "util/escape.hpp"
#include "util/leftover.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <string_view>
#include <sys/stat.h>

namespace contractor::transfer {
namespace {

std::string system_error(const std::string& what, int error) {
    return what + ": " + std::strerror(error);
}

// What a target that classify_workspace() calls foreign is, in words.
std::string describe_foreign(int parent, const std::string& name) {
    struct stat status {};
    if (fstatat(parent, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
        return std::string("cannot be inspected: ") + std::strerror(errno);
    }
    if (S_ISLNK(status.st_mode)) {
        return "is a symlink";
    }
    if (!S_ISDIR(status.st_mode)) {
        return "is not a folder";
    }
    return "is a folder that contractor did not make (it has files but no " +
           std::string(workspace_marker_name) + ")";
}

} // namespace

ForeignWorkspace::ForeignWorkspace(const std::filesystem::path& target,
                                   const std::string& what_it_is)
    : UsageError("the workspace " + util::escape_name(target.string()) + " " + what_it_is +
                     "; it was left as it is",
                 "name a new or empty folder as the workspace, or move this one away: "
                 "contractor replaces only a folder that it made") {}

ExportTooLarge::ExportTooLarge(std::uint64_t limit, std::uint64_t bytes_seen)
    : Error("the workspace is larger than the export-size limit of " + std::to_string(limit) +
                " bytes (" + std::to_string(bytes_seen) + " bytes so far)",
            "raise the export-size limit in the spec, or keep large files out of the workspace",
            ExitCode::limit_exceeded),
      limit_(limit), bytes_seen_(bytes_seen) {}

SafeExtractor::SafeExtractor(std::filesystem::path target, std::uint64_t size_limit,
                             ExtractOptions options)
    : target_(std::move(target).lexically_normal()), size_limit_(size_limit), options_(options) {
    if (!target_.has_filename() && target_.has_parent_path()) {
        target_ = target_.parent_path(); // "ws/" names "ws"
    }
    const std::string name = target_.filename().string();
    if (name.empty() || name == "." || name == ".." || target_ == target_.root_path()) {
        throw UsageError("cannot extract a workspace into " + target_.string(),
                         "name a directory, e.g. ./ws");
    }
    const std::filesystem::path parent = target_.has_parent_path() ? target_.parent_path() : ".";
    parent_.reset(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_) {
        throw InfrastructureError(system_error("cannot open " + parent.string(), errno));
    }
    // Beside the target, so that commit() is a rename within one file system.
    // The process id in the name lets a later run tell a killed run's folder from a live one.
    std::string pattern =
        (parent / ("." + name + ".contractor-" + std::to_string(getpid()) + "-XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
        throw InfrastructureError(
            system_error("cannot create a temporary directory in " + parent.string(), errno));
    }
    temporary_ = pattern;
    root_.reset(open(temporary_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_) {
        const int error = errno;
        remove_tree(parent_.get(), temporary_.filename());
        throw InfrastructureError(system_error("cannot open " + temporary_.string(), error));
    }
}

std::size_t remove_stale_temporaries(const std::filesystem::path& target) {
    std::filesystem::path folder = target;
    if (folder.filename().empty()) {
        folder = folder.parent_path();
    }
    const std::string prefix = "." + folder.filename().string() + ".contractor-";
    const std::filesystem::path parent = folder.has_parent_path() ? folder.parent_path() : ".";
    const Fd parent_fd(open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent_fd) {
        return 0;
    }
    std::size_t removed = 0;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(parent, error)) {
        const std::string name = entry.path().filename().string();
        if (!util::is_leftover(name, prefix)) {
            continue; // not a temporary folder, or its process still runs: left alone
        }
        remove_tree(parent_fd.get(), name);
        ++removed;
    }
    return removed;
}

SafeExtractor::~SafeExtractor() {
    writer_.reset();
    if (state_ != State::committed) {
        root_.reset();
        remove_tree(parent_.get(), temporary_.filename());
    }
}

void SafeExtractor::start_tree() {
    result_ = {};
    writer_ = std::make_unique<TreeWriter>(root_.get(), temporary_, size_limit_, options_, result_);
}

// Empties the temporary directory (a new one of the same name) for a whole stream.
void SafeExtractor::drop_tree() {
    writer_.reset();
    root_.reset();
    const std::string name = temporary_.filename();
    if (const int error = remove_tree(parent_.get(), name)) {
        throw InfrastructureError(system_error("cannot empty " + temporary_.string(), error));
    }
    if (mkdirat(parent_.get(), name.c_str(), S_IRWXU) != 0) {
        throw InfrastructureError(system_error("cannot create " + temporary_.string(), errno));
    }
    root_.reset(
        openat(parent_.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!root_) {
        throw InfrastructureError(system_error("cannot open " + temporary_.string(), errno));
    }
    start_tree();
}

void SafeExtractor::extract_base(const ByteSource& source) {
    if (state_ != State::created) {
        throw std::logic_error("SafeExtractor::extract_base() runs once, before extract()");
    }
    try {
        start_tree();
        TarReader reader(source);
        while (archive_entry* entry = reader.next()) {
            writer_->add(reader, entry);
        }
        state_ = State::based;
    } catch (...) {
        base_error_ = std::current_exception();
        drop_tree();
        throw;
    }
}

// Reads the list of removed paths (the entry the reader is at) and removes them from the tree.
void SafeExtractor::apply_removed_list(TarReader& reader) {
    std::string list;
    const char* data = nullptr;
    std::size_t length = 0;
    std::int64_t offset = 0;
    while (reader.read_block(data, length, offset)) {
        const auto end = static_cast<std::size_t>(offset) + length;
        if (offset < 0 || end > max_removed_list) {
            throw InfrastructureError("the worker's list of removed files is larger than " +
                                      std::to_string(max_removed_list) + " bytes");
        }
        list.resize(std::max(list.size(), end));
        std::memcpy(list.data() + offset, data, length);
    }
    for (std::size_t start = 0; start < list.size();) {
        const std::size_t end = std::min(list.find('\0', start), list.size());
        if (end > start) {
            writer_->remove(list.substr(start, end - start));
            ++result_.removed;
        }
        start = end + 1;
    }
}

ExtractResult SafeExtractor::extract(const ByteSource& source) {
    if (state_ != State::created && state_ != State::based) {
        throw std::logic_error("SafeExtractor::extract() can run only once");
    }
    const bool based = state_ == State::based;
    state_ = State::extracting;
    if (!writer_) {
        start_tree();
    }
    TarReader reader(source);
    archive_entry* entry = reader.next();
    bool changes = false;
    if (based || base_error_) {
        const char* name = entry != nullptr ? archive_entry_pathname(entry) : nullptr;
        std::string_view first = name != nullptr ? name : "";
        if (first.substr(0, 2) == "./") {
            first.remove_prefix(2);
        }
        changes = first == removed_list_name && archive_entry_filetype(entry) == AE_IFREG &&
                  archive_entry_hardlink(entry) == nullptr;
        if (changes && !based) {
            // The worker was told a base is here, which was lost: nothing to apply them to.
            std::rethrow_exception(base_error_);
        }
        if (changes) {
            apply_removed_list(reader);
            entry = reader.next();
        } else if (based) {
            drop_tree(); // a whole stream: the base is not part of it
        }
    }
    for (; entry != nullptr; entry = reader.next()) {
        writer_->add(reader, entry);
        ++result_.changed;
    }
    writer_->finish();
    result_.changes = changes;
    if (changes) {
        result_.bytes = writer_->content_bytes();
    } else {
        result_.changed = 0;
    }
    state_ = State::extracted;
    return result_;
}

void SafeExtractor::commit() {
    if (state_ != State::extracted) {
        throw std::logic_error("SafeExtractor::commit() needs a successful extract()");
    }
    const int parent = parent_.get();
    const std::string temporary_name = temporary_.filename();
    const std::string target_name = target_.filename();
    // The plan checked the target before the build, but the build took a while: a folder the
    // user filled meanwhile, or a symlink put in its place, must not be replaced now. Checked
    // through the parent's descriptor, as the swap below is.
    const auto check_target = [&] {
        if (classify_workspace(std::filesystem::path("/proc/self/fd") / std::to_string(parent) /
                               target_name) == WorkspaceState::foreign) {
            throw ForeignWorkspace(target_, describe_foreign(parent, target_name));
        }
    };
    check_target();
    // Written last, so that the worker can neither forge it (a marker entry is refused) nor
    // leave it out.
    if (const int error = write_workspace_marker(root_.get())) {
        throw InfrastructureError(
            system_error("cannot write the workspace marker into " + temporary_.string(), error));
    }
    // The new tree keeps the mode of the one it replaces; a new one gets the usual 0755.
    struct stat old {};
    const bool replacing = fstatat(parent, target_name.c_str(), &old, AT_SYMLINK_NOFOLLOW) == 0;
    const mode_t mode = replacing && S_ISDIR(old.st_mode) ? old.st_mode & 07777 : 0755;
    if (fchmod(root_.get(), mode) != 0) {
        throw InfrastructureError(
            system_error("cannot set the mode of " + temporary_.string(), errno));
    }
    root_.reset();

    if (!replacing) {
        if (renameat2(parent, temporary_name.c_str(), parent, target_name.c_str(),
                      RENAME_NOREPLACE) == 0) {
            state_ = State::committed;
            return;
        }
        if (errno != EEXIST && errno != EINVAL) {
            throw InfrastructureError(system_error(
                "cannot rename " + temporary_.string() + " to " + target_.string(), errno));
        }
        // EEXIST: the target appeared meanwhile, exchanged below if it may be replaced.
        // EINVAL: the file system lacks RENAME_NOREPLACE (NFS); a plain rename only fails if
        // the target is there.
        if (errno == EINVAL &&
            renameat(parent, temporary_name.c_str(), parent, target_name.c_str()) == 0) {
            state_ = State::committed;
            return;
        }
        check_target();
    }

    std::string old_name = temporary_name; // where the old tree ends up
    if (renameat2(parent, temporary_name.c_str(), parent, target_name.c_str(), RENAME_EXCHANGE) !=
        0) {
        if (errno != EINVAL) {
            throw InfrastructureError(system_error(
                "cannot exchange " + temporary_.string() + " with " + target_.string(), errno));
        }
        // The file system lacks RENAME_EXCHANGE (NFS): move the old tree aside first, which
        // leaves a moment without a target, but never a half-written one.
        old_name += "-old";
        if (renameat(parent, target_name.c_str(), parent, old_name.c_str()) != 0) {
            throw InfrastructureError(
                system_error("cannot move " + target_.string() + " aside", errno));
        }
        if (renameat(parent, temporary_name.c_str(), parent, target_name.c_str()) != 0) {
            const int error = errno;
            renameat(parent, old_name.c_str(), parent, target_name.c_str()); // put it back
            throw InfrastructureError(system_error(
                "cannot rename " + temporary_.string() + " to " + target_.string(), error));
        }
    }
    state_ = State::committed;
    if (const int error = remove_tree(parent, old_name)) {
        throw InfrastructureError(
            system_error("the new workspace is in place, but the old one could not be removed "
                         "from " +
                             (temporary_.parent_path() / old_name).string(),
                         error),
            "remove it by hand");
    }
}

} // namespace contractor::transfer

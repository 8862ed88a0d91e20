#include "transfer/pack.hpp"

#include "transfer/directory.hpp"
#include "transfer/handles.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/limits.h> // PATH_MAX
#include <map>
#include <new>
#include <set>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>

namespace contractor::transfer {
namespace {

// The sink gets blocks of this size: big enough that the cost of each call (an SSH channel
// write) vanishes, small enough that the receiver starts working early.
constexpr int block_size = 256 * 1024;
// Files are read in blocks of this size. Being larger than block_size lets libarchive hand
// most of each read to the sink without copying it into its own buffer first.
constexpr std::size_t read_size = 1 << 20;

// A pattern from PackSource::exclude, taken apart once.
struct ExcludePattern {
    std::string glob;
    bool match_path = false;       // contained '/': matched against the relative path
    bool directories_only = false; // ended in '/'
};

std::vector<ExcludePattern> parse_patterns(const std::vector<std::string>& patterns) {
    std::vector<ExcludePattern> parsed;
    for (std::string glob : patterns) {
        ExcludePattern pattern;
        while (!glob.empty() && glob.back() == '/') {
            glob.pop_back();
            pattern.directories_only = true;
        }
        const std::size_t first = glob.find_first_not_of('/');
        if (first == std::string::npos) {
            continue; // "" or "/": would exclude everything; a pattern like that is a mistake
        }
        pattern.match_path = glob.find('/') != std::string::npos;
        pattern.glob = glob.substr(first);
        parsed.push_back(std::move(pattern));
    }
    return parsed;
}

bool excluded(const std::vector<ExcludePattern>& patterns, const std::string& name,
              const std::string& relative, bool is_directory) {
    return std::any_of(patterns.begin(), patterns.end(), [&](const ExcludePattern& pattern) {
        if (pattern.directories_only && !is_directory) {
            return false;
        }
        const std::string& subject = pattern.match_path ? relative : name;
        return fnmatch(pattern.glob.c_str(), subject.c_str(), FNM_PATHNAME) == 0;
    });
}

// Where libarchive's output goes. An exception from the sink is kept here and rethrown once
// libarchive has returned: it must not unwind through C code.
struct SinkState {
    const ByteSink* sink = nullptr;
    std::exception_ptr error;
    // Set once packing is over: nothing more reaches the sink, so that freeing the archive
    // after a failure cannot end a broken stream with a valid end-of-archive marker.
    bool aborted = false;
};

la_ssize_t write_to_sink(archive* /*handle*/, void* client, const void* data, size_t size) {
    auto* state = static_cast<SinkState*>(client);
    if (state->aborted || state->error) {
        return -1;
    }
    try {
        (*state->sink)(static_cast<const char*>(data), size);
        return static_cast<la_ssize_t>(size);
    } catch (...) {
        state->error = std::current_exception();
        return -1;
    }
}

using FileId = std::pair<dev_t, ino_t>;

FileId id_of(const struct stat& status) {
    return {status.st_dev, status.st_ino};
}

// One pack_tree call: the archive being written and what it has seen so far.
class Packer {
public:
    explicit Packer(const ByteSink& sink);
    // Whatever happens to the archive from here on must not reach the sink: after finish()
    // there is nothing left to write, and after a failure the stream must stay unfinished.
    ~Packer() { state_.aborted = true; }
    Packer(const Packer&) = delete;
    Packer& operator=(const Packer&) = delete;

    void add(const PackSource& source);
    PackStats finish();

private:
    void walk(int dir_fd, const std::string& relative);
    void add_file(int dir_fd, const std::string& name, const std::string& relative);
    void add_symlink(int dir_fd, const std::string& name, const std::string& relative,
                     const struct stat& status);
    archive_entry* start_entry(const std::string& archive_path, const struct stat& status);
    void write_header(archive_entry* entry);
    void check(la_ssize_t status);
    [[noreturn]] void cannot_read(const std::string& relative, int error) const;

    SinkState state_;
    ArchiveWritePtr archive_;
    ArchiveEntryPtr entry_;
    std::vector<char> buffer_;
    // The first archive path of each file with several links, for the hardlink entries.
    std::map<FileId, std::string> linked_files_;
    PackStats stats_;

    // The source being added.
    std::filesystem::path directory_;
    std::string archive_base_; // "" or "prefix/"
    std::vector<ExcludePattern> patterns_;
    std::set<FileId> skipped_;
};

Packer::Packer(const ByteSink& sink)
    : archive_(archive_write_new()), entry_(archive_entry_new()), buffer_(read_size) {
    if (!archive_ || !entry_) {
        throw std::bad_alloc();
    }
    state_.sink = &sink;
    archive* handle = archive_.get();
    check(archive_write_set_format_pax_restricted(handle));
    check(archive_write_set_bytes_per_block(handle, block_size));
    // No padding after the end-of-archive marker: the stream ends where the tar data ends.
    check(archive_write_set_bytes_in_last_block(handle, 1));
    check(archive_write_open(handle, &state_, nullptr, write_to_sink, nullptr));
}

void Packer::add(const PackSource& source) {
    directory_ = source.directory;
    const Fd root(open(directory_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root) {
        if (errno == ENOENT || errno == ENOTDIR) {
            throw UsageError("cannot pack " + directory_.string() + ": " +
                             (errno == ENOENT ? "it does not exist" : "it is not a directory"));
        }
        cannot_read("", errno);
    }
    struct stat status {};
    if (fstat(root.get(), &status) != 0) {
        cannot_read("", errno);
    }
    skipped_.clear();
    for (const std::filesystem::path& skip : source.skip) {
        struct stat skip_status {};
        if (stat(skip.c_str(), &skip_status) == 0) {
            skipped_.insert(id_of(skip_status));
        }
    }
    if (skipped_.contains(id_of(status))) {
        return;
    }
    patterns_ = parse_patterns(source.exclude);
    std::string prefix = source.prefix;
    prefix.erase(0, std::min(prefix.find_first_not_of('/'), prefix.size()));
    while (!prefix.empty() && prefix.back() == '/') {
        prefix.pop_back();
    }
    archive_base_ = prefix.empty() ? "" : prefix + "/";
    if (!prefix.empty()) {
        archive_entry* entry = start_entry(prefix, status);
        archive_entry_set_filetype(entry, AE_IFDIR);
        write_header(entry);
    }
    walk(root.get(), "");
}

PackStats Packer::finish() {
    check(archive_write_close(archive_.get()));
    return stats_;
}

// Packs the contents of the directory open as `dir_fd`, whose path below the source is
// `relative` ("" or ending in '/').
void Packer::walk(int dir_fd, const std::string& relative) {
    std::vector<std::string> names;
    if (const int error = list_directory(dir_fd, names)) {
        cannot_read(relative, error);
    }
    for (const std::string& name : names) {
        const std::string path = relative + name;
        struct stat status {};
        if (fstatat(dir_fd, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT) {
                continue; // deleted since the directory was listed
            }
            cannot_read(path, errno);
        }
        const bool is_directory = S_ISDIR(status.st_mode);
        if (skipped_.contains(id_of(status)) || excluded(patterns_, name, path, is_directory)) {
            continue;
        }
        if (S_ISREG(status.st_mode)) {
            add_file(dir_fd, name, path);
        } else if (is_directory) {
            const Fd child(
                openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
            if (!child) {
                if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) {
                    continue; // deleted or replaced since it was listed
                }
                cannot_read(path, errno);
            }
            archive_entry* entry = start_entry(archive_base_ + path, status);
            archive_entry_set_filetype(entry, AE_IFDIR);
            write_header(entry);
            walk(child.get(), path + "/");
        } else if (S_ISLNK(status.st_mode)) {
            add_symlink(dir_fd, name, path, status);
        }
        // Sockets, FIFOs and device nodes have no place in a build tree: skipped.
    }
}

void Packer::add_file(int dir_fd, const std::string& name, const std::string& relative) {
    // O_NONBLOCK: should the file have been replaced by a FIFO since it was listed, open must
    // not wait for a writer. It changes nothing for regular files.
    const Fd file(openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!file) {
        if (errno == ENOENT || errno == ELOOP) {
            return; // deleted, or replaced by a symlink, since the directory was listed
        }
        cannot_read(relative, errno);
    }
    struct stat status {};
    if (fstat(file.get(), &status) != 0) {
        cannot_read(relative, errno);
    }
    if (!S_ISREG(status.st_mode)) {
        return;
    }
    const std::string archive_path = archive_base_ + relative;
    archive_entry* entry = start_entry(archive_path, status);
    archive_entry_set_filetype(entry, AE_IFREG);
    if (status.st_nlink > 1) {
        const auto [first, inserted] = linked_files_.try_emplace(id_of(status), archive_path);
        if (!inserted) {
            archive_entry_copy_hardlink(entry, first->second.c_str());
            archive_entry_set_size(entry, 0);
            write_header(entry);
            return;
        }
    }
    archive_entry_set_size(entry, status.st_size);
    write_header(entry);
    auto remaining = static_cast<std::uint64_t>(status.st_size);
    while (remaining > 0) {
        const ssize_t got =
            read(file.get(), buffer_.data(),
                 static_cast<std::size_t>(std::min<std::uint64_t>(buffer_.size(), remaining)));
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            cannot_read(relative, errno);
        }
        if (got == 0) {
            // The file shrank while being packed: libarchive pads the entry with zeros up to
            // the size already written in its header, which keeps the stream valid.
            break;
        }
        check(archive_write_data(archive_.get(), buffer_.data(), static_cast<std::size_t>(got)));
        remaining -= static_cast<std::uint64_t>(got);
        stats_.bytes += static_cast<std::uint64_t>(got);
    }
}

void Packer::add_symlink(int dir_fd, const std::string& name, const std::string& relative,
                         const struct stat& status) {
    char target[PATH_MAX + 1]; // Linux caps symlink targets below PATH_MAX bytes
    const ssize_t length = readlinkat(dir_fd, name.c_str(), target, PATH_MAX);
    if (length < 0) {
        if (errno == ENOENT || errno == EINVAL) {
            return; // deleted, or replaced by something else, since the directory was listed
        }
        cannot_read(relative, errno);
    }
    target[length] = '\0';
    archive_entry* entry = start_entry(archive_base_ + relative, status);
    archive_entry_set_filetype(entry, AE_IFLNK);
    archive_entry_copy_symlink(entry, target);
    write_header(entry);
}

// The reused entry, cleared (so uid and gid are 0 and there are no owner names) and given
// the path, permissions and mtime.
archive_entry* Packer::start_entry(const std::string& archive_path, const struct stat& status) {
    archive_entry* entry = entry_.get();
    archive_entry_clear(entry);
    archive_entry_copy_pathname(entry, archive_path.c_str());
    archive_entry_set_perm(entry, status.st_mode & 07777);
    archive_entry_set_mtime(entry, status.st_mtim.tv_sec, status.st_mtim.tv_nsec);
    return entry;
}

void Packer::write_header(archive_entry* entry) {
    check(archive_write_header(archive_.get(), entry));
    ++stats_.entries;
}

// Throws for a libarchive failure, or the sink's own exception when that was the cause.
// ARCHIVE_WARN passes: libarchive gives it for names it cannot convert to UTF-8, which it
// then writes as raw bytes.
void Packer::check(la_ssize_t status) {
    if (status >= ARCHIVE_WARN) {
        return;
    }
    if (state_.error) {
        std::rethrow_exception(state_.error);
    }
    const char* message = archive_error_string(archive_.get());
    throw InfrastructureError(std::string("cannot write the tar stream: ") +
                              (message != nullptr ? message : "libarchive gave no reason"));
}

void Packer::cannot_read(const std::string& relative, int error) const {
    const std::filesystem::path path = relative.empty() ? directory_ : directory_ / relative;
    throw InfrastructureError(
        "cannot read " + path.string() + ": " + std::strerror(error),
        error == EACCES ? "make it readable, or leave it out with an exclude pattern" : "");
}

} // namespace

PackStats pack_tree(const std::vector<PackSource>& sources, const ByteSink& sink) {
    Packer packer(sink);
    for (const PackSource& source : sources) {
        packer.add(source);
    }
    return packer.finish();
}

} // namespace contractor::transfer

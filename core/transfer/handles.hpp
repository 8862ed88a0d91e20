#pragma once

#include <archive.h>
#include <archive_entry.h>

#include <memory>
#include <unistd.h>
#include <utility>

// Owning handles for file descriptors and libarchive objects: each is released exactly once.
namespace contractor::transfer {

// An owned file descriptor; -1 when empty.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset(std::exchange(other.fd_, -1));
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    // Closes the current descriptor (if any) and owns `fd` instead.
    void reset(int fd = -1) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

struct ArchiveReadDeleter {
    void operator()(archive* handle) const { archive_read_free(handle); }
};
struct ArchiveWriteDeleter {
    void operator()(archive* handle) const { archive_write_free(handle); }
};
struct ArchiveEntryDeleter {
    void operator()(archive_entry* entry) const { archive_entry_free(entry); }
};

using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteDeleter>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryDeleter>;

} // namespace contractor::transfer

#include "transfer/directory.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <new>
#include <string_view>
#include <sys/stat.h>
#include <sys/syscall.h>

namespace contractor::transfer {

int list_directory(int dir_fd, std::vector<std::string>& names) {
    names.clear();
    // fdopendir takes ownership of its descriptor, so it gets a duplicate of ours.
    const int own = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
        return errno;
    }
    DIR* directory = fdopendir(own);
    if (directory == nullptr) {
        const int error = errno;
        ::close(own);
        return error;
    }
    // A duplicated descriptor shares its offset with the original: start from the beginning.
    rewinddir(directory);
    errno = 0;
    while (const dirent* entry = readdir(directory)) {
        const std::string_view name = entry->d_name;
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
        errno = 0;
    }
    const int error = errno;
    closedir(directory);
    std::sort(names.begin(), names.end());
    return error;
}

Fd open_beneath(int root_fd, const std::string& path, int flags, std::uint64_t resolve) {
    open_how how{};
    how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
    how.resolve = resolve;
    for (int attempt = 0;; ++attempt) {
        const long fd = syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
        // With RESOLVE_BENEATH the kernel answers EAGAIN when a rename elsewhere on the system
        // raced with a ".." step; it asks the caller to try again.
        if (fd < 0 && errno == EAGAIN && attempt < 16) {
            continue;
        }
        return Fd(static_cast<int>(fd));
    }
}

int remove_tree(int parent_fd, const std::string& name) noexcept {
    try {
        if (unlinkat(parent_fd, name.c_str(), 0) == 0 || errno == ENOENT) {
            return 0;
        }
        if (errno != EISDIR) {
            return errno;
        }
        // A directory (unlinkat never follows a symlink): make sure we may list and empty it.
        struct stat status {};
        if (fstatat(parent_fd, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
            return errno;
        }
        if (S_ISDIR(status.st_mode) && (status.st_mode & S_IRWXU) != S_IRWXU &&
            fchmodat(parent_fd, name.c_str(), S_IRWXU, 0) != 0) {
            return errno;
        }
        const Fd directory(
            openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!directory) {
            return errno;
        }
        std::vector<std::string> children;
        if (const int error = list_directory(directory.get(), children)) {
            return error;
        }
        int first_error = 0;
        for (const std::string& child : children) {
            const int error = remove_tree(directory.get(), child);
            first_error = first_error != 0 ? first_error : error;
        }
        if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && first_error == 0) {
            first_error = errno;
        }
        return first_error;
    } catch (const std::bad_alloc&) {
        return ENOMEM;
    }
}

} // namespace contractor::transfer

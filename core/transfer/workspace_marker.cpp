#include "transfer/workspace_marker.hpp"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace contractor::transfer {

WorkspaceState classify_workspace(const std::filesystem::path& path) {
    struct stat status {};
    if (::lstat(path.c_str(), &status) != 0) {
        return errno == ENOENT ? WorkspaceState::missing : WorkspaceState::foreign;
    }
    if (!S_ISDIR(status.st_mode)) {
        return WorkspaceState::foreign; // a file, a symlink (to a folder or not), a device
    }
    std::error_code error;
    if (std::filesystem::is_empty(path, error) && !error) {
        return WorkspaceState::empty;
    }
    struct stat marker {};
    const std::filesystem::path marker_path = path / std::string(workspace_marker_name);
    if (::lstat(marker_path.c_str(), &marker) == 0 && S_ISREG(marker.st_mode)) {
        return WorkspaceState::contractor;
    }
    return WorkspaceState::foreign;
}

int write_workspace_marker(int dir_fd) noexcept {
    static constexpr std::string_view text =
        "This folder is a contractor workspace: `contractor build` replaces it with what the\n"
        "build leaves in the worker's /workspace. Remove this file to keep contractor from\n"
        "replacing the folder.\n";
    const std::string name(workspace_marker_name);
    ::unlinkat(dir_fd, name.c_str(), 0);
    const int fd =
        ::openat(dir_fd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        return errno;
    }
    const ssize_t written = ::write(fd, text.data(), text.size());
    const int write_errno = errno;
    ::close(fd);
    return written == static_cast<ssize_t>(text.size()) ? 0 : (written < 0 ? write_errno : EIO);
}

} // namespace contractor::transfer

#include "util/private_file.hpp"

#include "util/error.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace contractor::util {

namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const char* action) {
    throw InfrastructureError("cannot " + std::string(action) + " " + file.string() + ": " +
                              std::strerror(errno));
}

} // namespace

void write_private_file(const std::filesystem::path& file, std::string_view content) {
    const std::filesystem::path temporary = file.string() + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail(temporary, "create");
    }
    // An older temporary file may have had other permissions.
    int error = ::fchmod(fd, 0600) == 0 ? 0 : errno;
    while (error == 0 && !content.empty()) {
        const ssize_t count = ::write(fd, content.data(), content.size());
        if (count < 0 && errno != EINTR) {
            error = errno;
        } else if (count > 0) {
            content.remove_prefix(static_cast<std::size_t>(count));
        }
    }
    if (::close(fd) != 0 && error == 0) {
        error = errno;
    }
    if (error != 0) {
        ::unlink(temporary.c_str());
        errno = error;
        fail(temporary, "write");
    }
    if (::rename(temporary.c_str(), file.c_str()) != 0) {
        error = errno;
        ::unlink(temporary.c_str());
        errno = error;
        fail(file, "write");
    }
}

} // namespace contractor::util

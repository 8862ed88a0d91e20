#include "cli/base_tap.hpp"

#include "util/error.hpp"
#include "util/log.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace contractor::cli {

BaseTap::BaseTap(transfer::SafeExtractor& extractor, const std::filesystem::path& folder)
    : extractor_(extractor),
      copy_(open(folder.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, S_IRUSR | S_IWUSR)) {
    if (!copy_) {
        // No base: the workspace comes back whole, as without one.
        util::debug("cli",
                    "no copy of the input in " + folder.string() + ": " + std::strerror(errno));
    }
}

BaseTap::~BaseTap() {
    stop_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
}

void BaseTap::feed(const char* data, std::size_t size) noexcept {
    while (copy_ && size > 0) {
        const ssize_t written = write(copy_.get(), data, size);
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            util::debug("cli", std::string("no copy of the input: ") + std::strerror(errno));
            copy_.reset();
            return;
        }
        data += written;
        size -= static_cast<std::size_t>(written);
    }
}

bool BaseTap::finish_sending() {
    if (!copy_) {
        return false;
    }
    started_ = true;
    thread_ = std::thread([this] {
        try {
            std::uint64_t offset = 0;
            extractor_.extract_base([this, &offset](char* buffer,
                                                    std::size_t capacity) -> std::size_t {
                if (stop_) {
                    throw InfrastructureError("the build ended before the input's copy was "
                                              "extracted");
                }
                for (;;) {
                    const ssize_t got =
                        pread(copy_.get(), buffer, capacity, static_cast<off_t>(offset));
                    if (got >= 0) {
                        offset += static_cast<std::uint64_t>(got);
                        return static_cast<std::size_t>(got);
                    }
                    if (errno != EINTR) {
                        throw InfrastructureError(std::string("cannot read the input's copy: ") +
                                                  std::strerror(errno));
                    }
                }
            });
        } catch (...) {
            error_ = std::current_exception();
        }
        copy_.reset(); // the space goes back now
    });
    return true;
}

std::exception_ptr BaseTap::wait() {
    if (!started_) {
        return std::make_exception_ptr(InfrastructureError("no copy of the input was kept"));
    }
    if (thread_.joinable()) {
        thread_.join();
    }
    return error_;
}

} // namespace contractor::cli

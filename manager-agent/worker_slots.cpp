#include "manager-agent/worker_slots.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fcntl.h>
#include <sys/file.h>
#include <thread>
#include <unistd.h>

namespace contractor::manager {
namespace {

// How often a waiting build tries the slots again.
constexpr std::chrono::milliseconds retry_interval(250);

} // namespace

WorkerSlot::WorkerSlot(const std::filesystem::path& folder, std::uint64_t count, Outbox& outbox) {
    std::filesystem::create_directories(folder);
    count = std::max<std::uint64_t>(count, 1);
    bool said = false;
    const auto started = std::chrono::steady_clock::now();
    for (;;) {
        for (std::uint64_t slot = 0; slot < count; ++slot) {
            const auto file = folder / ("slot-" + std::to_string(slot));
            const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0) {
                throw InfrastructureError("cannot open the worker slot " + file.string() + ": " +
                                          std::strerror(errno));
            }
            if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
                fd_ = fd;
                index_ = slot;
                if (said) {
                    const auto waited = std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::steady_clock::now() - started)
                                            .count();
                    outbox.status("got a worker slot after " + std::to_string(waited) + " s");
                }
                return;
            }
            ::close(fd);
        }
        if (!said) {
            outbox.status("waiting for a worker slot: " + std::to_string(count) +
                          (count == 1 ? " build runs" : " builds run") +
                          " at once here (config max-workers)");
            said = true;
        }
        if (util::cancel_requested()) {
            throw Interrupted(util::cancel_signal());
        }
        std::this_thread::sleep_for(retry_interval);
    }
}

WorkerSlot::~WorkerSlot() {
    if (fd_ >= 0) {
        ::close(fd_); // releases the lock
    }
}

} // namespace contractor::manager

#pragma once

#include "protocol/frames.hpp"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

namespace contractor::manager {

// Frames from the CLI, read by a thread of their own so that the CLI going away (end of
// stdin) or a "cancel" is noticed whatever the agent is doing: both set the process's cancel
// flag (util/cancel.hpp), which every wait polls, so the worker is torn down at once. The job
// belongs to a live CLI connection.
class Inbox {
public:
    explicit Inbox(int fd);
    ~Inbox();
    Inbox(const Inbox&) = delete;
    Inbox& operator=(const Inbox&) = delete;

    // The next frame; nullopt when none arrived within `timeout`. Throws Interrupted once the
    // CLI cancelled or went away and every frame before that was taken.
    std::optional<protocol::Frame> next(std::chrono::milliseconds timeout);

private:
    void read_loop();

    connection::FdStream stream_;
    protocol::FrameReader reader_;
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::condition_variable taken_;
    // Input data frames are 1 MiB: at most this many MiB wait here.
    static constexpr std::size_t max_queued_frames = 16;
    std::deque<protocol::Frame> frames_;
    bool closed_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace contractor::manager

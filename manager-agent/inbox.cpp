#include "manager-agent/inbox.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <csignal>

namespace contractor::manager {

Inbox::Inbox(int fd) : stream_(fd, -1), reader_(stream_), thread_([this] { read_loop(); }) {}

Inbox::~Inbox() {
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    thread_.join();
}

void Inbox::read_loop() {
    for (;;) {
        {
            // Back-pressure: a CLI sending its input faster than the worker unpacks it waits
            // in its write instead of filling this process's memory.
            std::unique_lock lock(mutex_);
            taken_.wait_for(lock, std::chrono::milliseconds(200),
                            [this] { return frames_.size() < max_queued_frames || stopping_; });
            if (stopping_) {
                return;
            }
            if (frames_.size() >= max_queued_frames) {
                continue;
            }
        }
        try {
            // Short waits so that the destructor is not kept waiting.
            auto frame = reader_.next(std::chrono::milliseconds(200));
            if (!frame) {
                continue;
            }
            const bool cancel = frame->type() == "cancel";
            {
                const std::lock_guard lock(mutex_);
                frames_.push_back(std::move(*frame));
            }
            arrived_.notify_all();
            if (cancel) {
                util::debug("manager", "the CLI cancelled the job");
                util::request_cancel(SIGTERM);
            }
        } catch (const std::exception& error) {
            util::debug("manager", std::string("the CLI connection ended: ") + error.what());
            {
                const std::lock_guard lock(mutex_);
                closed_ = true;
            }
            arrived_.notify_all();
            util::request_cancel(SIGTERM);
            return;
        }
    }
}

std::optional<protocol::Frame> Inbox::next(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    arrived_.wait_for(lock, timeout, [this] { return !frames_.empty() || closed_; });
    if (!frames_.empty()) {
        protocol::Frame frame = std::move(frames_.front());
        frames_.pop_front();
        taken_.notify_all();
        return frame;
    }
    if (closed_) {
        throw Interrupted(SIGTERM);
    }
    return std::nullopt;
}

} // namespace contractor::manager

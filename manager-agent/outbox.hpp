#pragma once

#include "protocol/frames.hpp"

#include <nlohmann/json.hpp>

#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace contractor::manager {

// Messages to the CLI. Thread-safe: stderr of a command and its stdout may be sent from
// different callbacks.
class Outbox {
public:
    explicit Outbox(int fd) : stream_(-1, fd), writer_(stream_) {}

    // A line for the person watching ("worker booted in 8.1 s").
    void status(const std::string& text);
    // A phase started: boot, provision, copy-in, build, copy-out.
    void phase(const std::string& name);
    // Output of a command in the worker: "stdout" or "stderr", during `phase`.
    void log(std::string_view stream, std::string_view phase, std::string_view bytes);
    // Any other message.
    void send(nlohmann::json header, std::string_view payload = {});

private:
    connection::FdStream stream_;
    protocol::FrameWriter writer_;
    std::mutex mutex_;
};

// Sends a "heartbeat" frame every few seconds while it lives, so the CLI can tell a manager
// that stopped answering (a paused or hung VM keeps its TCP connection open) from a build
// that is merely quiet. A failed send ends it: the CLI is gone.
class Heartbeat {
public:
    explicit Heartbeat(Outbox& outbox);
    ~Heartbeat();
    Heartbeat(const Heartbeat&) = delete;
    Heartbeat& operator=(const Heartbeat&) = delete;

private:
    Outbox& outbox_;
    std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace contractor::manager

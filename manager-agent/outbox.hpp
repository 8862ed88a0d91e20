#pragma once

#include "protocol/frames.hpp"

#include <nlohmann/json.hpp>

#include <mutex>
#include <string>
#include <string_view>

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

} // namespace contractor::manager

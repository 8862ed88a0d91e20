#pragma once

#include "connection/stream.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

// The protocol between contractor, contractor-manager and (later) contractor-worker: a stream
// of frames, each one JSON object on one line; a frame whose header has "size": N is followed
// by N raw bytes (a tar stream chunk, build output), so bulk data is never re-encoded.
// Both sides start with {"type": "hello", "version": N}; see protocol/messages.hpp.
namespace contractor::protocol {

struct Frame {
    nlohmann::json header; // always has "type"
    std::string payload;   // the bytes announced by "size", or empty
    const std::string& type() const { return header.at("type").get_ref<const std::string&>(); }
};

// Writes frames to a stream.
class FrameWriter {
public:
    explicit FrameWriter(connection::ByteStream& stream) : stream_(stream) {}
    // Sends `header` (plus "size" when `payload` is not empty) and the payload.
    void send(nlohmann::json header, std::string_view payload = {});

private:
    connection::ByteStream& stream_;
};

// Reads frames from a stream, keeping partial frames across timeouts.
class FrameReader {
public:
    explicit FrameReader(connection::ByteStream& stream) : stream_(stream) {}
    // The next frame; nullopt when none completed within `timeout`. Throws ProtocolError at
    // end of stream (the peer went away) or on a malformed frame.
    std::optional<Frame> next(std::chrono::milliseconds timeout);

private:
    bool fill(std::chrono::steady_clock::time_point deadline);

    connection::ByteStream& stream_;
    std::string buffer_;
    std::optional<nlohmann::json> pending_header_;
};

// The peer broke the protocol or went away: an infrastructure error (exit 4) when nothing
// above handles it.
class ProtocolError : public InfrastructureError {
public:
    ProtocolError(const std::string& what, bool peer_gone)
        : InfrastructureError(what), peer_gone_(peer_gone) {}
    bool peer_gone() const { return peer_gone_; }

private:
    bool peer_gone_;
};

// The largest header line and payload accepted: far above what either side sends, far below
// what would hurt.
inline constexpr std::size_t max_header_bytes = 1 << 20;
inline constexpr std::size_t max_payload_bytes = 16 << 20;

} // namespace contractor::protocol

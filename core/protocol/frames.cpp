#include "protocol/frames.hpp"

#include <array>

namespace contractor::protocol {

void FrameWriter::send(nlohmann::json header, std::string_view payload) {
    if (!payload.empty()) {
        header["size"] = payload.size();
    }
    std::string line = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    if (payload.size() <= 65536) {
        // Header and small payloads in one write: fewer wakeups on the other side.
        line.append(payload);
        stream_.write(line.data(), line.size());
        return;
    }
    stream_.write(line.data(), line.size());
    stream_.write(payload.data(), payload.size());
}

bool FrameReader::fill(std::chrono::steady_clock::time_point deadline) {
    std::array<char, 1 << 16> chunk{};
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    const auto count =
        stream_.read(chunk.data(), chunk.size(), std::max(left, std::chrono::milliseconds(0)));
    if (!count) {
        return false;
    }
    if (*count == 0) {
        throw ProtocolError("the other side closed the connection", true);
    }
    buffer_.append(chunk.data(), *count);
    return true;
}

std::optional<Frame> FrameReader::next(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (!pending_header_) {
            const std::size_t end = buffer_.find('\n');
            if (end != std::string::npos) {
                auto header =
                    nlohmann::json::parse(buffer_.begin(), buffer_.begin() + end, nullptr, false);
                buffer_.erase(0, end + 1);
                if (header.is_discarded() || !header.is_object() || !header.contains("type") ||
                    !header["type"].is_string()) {
                    throw ProtocolError("a malformed message arrived", false);
                }
                pending_header_ = std::move(header);
            } else if (buffer_.size() > max_header_bytes) {
                throw ProtocolError("a message header is too long", false);
            }
        }
        if (pending_header_) {
            std::size_t size = 0;
            if (const auto found = pending_header_->find("size"); found != pending_header_->end()) {
                if (!found->is_number_unsigned() || found->get<std::size_t>() > max_payload_bytes) {
                    throw ProtocolError("a message announced a bad payload size", false);
                }
                size = found->get<std::size_t>();
            }
            if (buffer_.size() >= size) {
                Frame frame{std::move(*pending_header_), buffer_.substr(0, size)};
                buffer_.erase(0, size);
                pending_header_.reset();
                return frame;
            }
        }
        if (!fill(deadline)) {
            return std::nullopt;
        }
    }
}

} // namespace contractor::protocol

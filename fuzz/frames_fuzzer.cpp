// Feeds arbitrary bytes, in chunks whose sizes the input also chooses, through the frame reader
// that reads everything the manager and the CLI say to each other (a hostile manager VM, or a
// worker that broke into it, writes these bytes). The only exception allowed out is
// contractor::Error; anything else, a crash, leak, sanitizer report or a hang is a finding.
#include "connection/stream.hpp"
#include "protocol/frames.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace {

// The input's first byte sets the chunk size; the rest is the stream, then its end.
class ChunkedStream : public contractor::connection::ByteStream {
public:
    ChunkedStream(const std::uint8_t* data, std::size_t size)
        : chunk_(size > 0 ? 1 + data[0] % 64 : 1), data_(size > 0 ? data + 1 : data),
          size_(size > 0 ? size - 1 : 0) {}

    std::optional<std::size_t> read(char* buffer, std::size_t capacity,
                                    std::chrono::milliseconds) override {
        if (offset_ == size_) {
            return 0;
        }
        // Every other read "times out", as a slow peer's would.
        if (++reads_ % 2 == 0) {
            return std::nullopt;
        }
        const std::size_t count = std::min({capacity, chunk_, size_ - offset_});
        std::memcpy(buffer, data_ + offset_, count);
        offset_ += count;
        return count;
    }
    void write(const char*, std::size_t) override {}
    void close_write() override {}

private:
    std::size_t chunk_;
    const std::uint8_t* data_;
    std::size_t size_;
    std::size_t offset_ = 0;
    std::size_t reads_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ChunkedStream stream(data, size);
    contractor::protocol::FrameReader reader(stream);
    try {
        for (int frames = 0; frames < 100000; ++frames) {
            auto frame = reader.next(std::chrono::milliseconds(0));
            if (frame) {
                // What both sides do with a frame: its type, a field, its payload's size.
                (void)frame->header.value("type", nlohmann::json()).dump();
                if (frame->header.contains("type") && frame->header["type"].is_string()) {
                    (void)frame->type();
                }
                (void)frame->payload.size();
            }
        }
    } catch (const contractor::Error&) {
    }
    return 0;
}

#pragma once

#include "transfer/handles.hpp"
#include "transfer/safe_extract.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <thread>

namespace contractor::cli {

// Keeps a copy of the input stream as it is sent and extracts it, while the build runs, into a
// SafeExtractor's base (extract_base): the tree that the worker's stream of changes is applied
// to when the workspace comes back. The copy goes into an unnamed file (O_TMPFILE) beside the
// workspace, which nothing has to clean up; the extraction runs in a thread of its own, so
// neither the sending nor the build waits for it.
class BaseTap {
public:
    // The copy's file is made in `folder` (the workspace's parent); without one (a file system
    // without O_TMPFILE) nothing is kept and finish_sending() says so.
    BaseTap(transfer::SafeExtractor& extractor, const std::filesystem::path& folder);
    // Stops the extraction early if it still runs, and waits for it.
    ~BaseTap();
    BaseTap(const BaseTap&) = delete;
    BaseTap& operator=(const BaseTap&) = delete;

    // The next bytes of the stream.
    void feed(const char* data, std::size_t size) noexcept;
    // The whole stream was fed: starts extracting it. Whether a base will be there (the copy is
    // whole); the extraction may still fail, which wait() says.
    bool finish_sending();
    // Waits for the extraction: null when the base is in place, else why not (an
    // ExportTooLarge when the input alone is over the export-size limit).
    std::exception_ptr wait();

private:
    transfer::SafeExtractor& extractor_;
    transfer::Fd copy_;
    bool started_ = false;
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
    std::thread thread_;
};

} // namespace contractor::cli

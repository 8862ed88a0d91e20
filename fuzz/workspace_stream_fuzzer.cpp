// Feeds arbitrary bytes as the workspace tar stream a worker sends back through the safe
// extractor, into a scratch folder, and commits what it accepts: exactly what the CLI does with
// a hostile worker's stream. The only exception allowed out is contractor::Error; a crash, leak,
// sanitizer report, a hang, or a file outside the scratch folder is a finding.
#include "transfer/safe_extract.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace {

std::filesystem::path scratch() {
    static const std::filesystem::path folder = [] {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "contractor-fuzz.XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::abort();
        }
        return std::filesystem::path(pattern);
    }();
    return folder;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::filesystem::path folder = scratch();
    const std::filesystem::path target = folder / "ws";
    std::size_t offset = 0;
    const auto source = [&](char* buffer, std::size_t capacity) -> std::size_t {
        // Small, uneven reads: a stream arrives in frames of any size.
        const std::size_t count = std::min({capacity, size - offset, std::size_t{777}});
        std::memcpy(buffer, data + offset, count);
        offset += count;
        return count;
    };
    try {
        contractor::transfer::SafeExtractor extractor(target, 1 << 20);
        (void)extractor.extract(source);
        extractor.commit();
    } catch (const contractor::Error&) {
    }
    // Nothing may land beside the workspace: only ws (or nothing) is in the scratch folder.
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        if (entry.path().filename() != "ws") {
            std::abort();
        }
    }
    return 0;
}

// Feeds arbitrary bytes as the workspace tar stream a worker sends back through the safe
// extractor, into a scratch folder, and commits what it accepts: exactly what the CLI does with
// a hostile worker's stream. The first byte chooses: odd, the stream is applied to a base (a
// small tree with folders, a symlink, a hardlink and a HEAD, as the CLI's copy of the input),
// where its first entry may be the list of removed paths; even, it is taken whole. The only
// exception allowed out is contractor::Error; a crash, leak, sanitizer report, a hang, or a file
// outside the scratch folder is a finding.
#include "transfer/safe_extract.hpp"
#include "util/error.hpp"

#include <archive.h>
#include <archive_entry.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace {

// The base: what the CLI extracted from its own input before the worker's changes come.
const std::string& base_stream() {
    static const std::string stream = [] {
        std::string bytes;
        archive* writer = archive_write_new();
        archive_write_set_format_pax_restricted(writer);
        archive_write_set_bytes_in_last_block(writer, 1);
        archive_write_open(
            writer, &bytes, nullptr,
            [](archive*, void* client, const void* data, std::size_t size) -> la_ssize_t {
                static_cast<std::string*>(client)->append(static_cast<const char*>(data), size);
                return static_cast<la_ssize_t>(size);
            },
            nullptr);
        archive_entry* entry = archive_entry_new();
        const auto add = [&](const char* name, mode_t type, const char* content,
                             const char* link = nullptr, bool hard = false) {
            archive_entry_clear(entry);
            archive_entry_copy_pathname(entry, name);
            archive_entry_set_filetype(entry, type);
            archive_entry_set_perm(entry, type == AE_IFDIR ? 0755 : 0644);
            if (link != nullptr) {
                hard ? archive_entry_copy_hardlink(entry, link)
                     : archive_entry_copy_symlink(entry, link);
            }
            archive_entry_set_size(entry, static_cast<la_int64_t>(std::strlen(content)));
            archive_write_header(writer, entry);
            archive_write_data(writer, content, std::strlen(content));
        };
        add("src", AE_IFDIR, "");
        add("src/main.c", AE_IFREG, "int main() {}\n");
        add("src/sub", AE_IFDIR, "");
        add("src/sub/HEAD", AE_IFREG, "ref: refs/heads/main\n");
        add("src/link", AE_IFLNK, "", "sub");
        add("src/hard", AE_IFREG, "", "src/main.c", true);
        add("out", AE_IFDIR, "");
        add("out/a.o", AE_IFREG, "object");
        archive_entry_free(entry);
        archive_write_close(writer);
        archive_write_free(writer);
        return bytes;
    }();
    return stream;
}

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
    if (size == 0) {
        return 0;
    }
    const bool based = (data[0] & 1) != 0;
    ++data;
    --size;
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
        if (based) {
            std::size_t base_offset = 0;
            extractor.extract_base([&](char* buffer, std::size_t capacity) -> std::size_t {
                const std::string& base = base_stream();
                const std::size_t count = std::min(capacity, base.size() - base_offset);
                std::memcpy(buffer, base.data() + base_offset, count);
                base_offset += count;
                return count;
            });
        }
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

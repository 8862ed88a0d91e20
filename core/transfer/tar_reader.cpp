#include "transfer/tar_reader.hpp"

#include <cerrno>
#include <new>

namespace contractor::transfer {
namespace {

// The source is asked for this much at a time.
constexpr std::size_t read_size = 1 << 20;

} // namespace

TarReader::TarReader(const ByteSource& source)
    : source_(source), buffer_(read_size), archive_(archive_read_new()) {
    if (!archive_) {
        throw std::bad_alloc();
    }
    // Covers ustar, pax and GNU tar. No other format and no compression filter: the stream
    // comes from our own packer, and every extra reader is attack surface.
    check(archive_read_support_format_tar(archive_.get()));
    check(archive_read_open(archive_.get(), this, nullptr, &TarReader::read_callback, nullptr));
}

archive_entry* TarReader::next() {
    archive* handle = archive_.get();
    if (in_entry_) {
        // Consume the rest of the entry now, so that the position marks where its data ends.
        check(archive_read_data_skip(handle));
        end_of_entries_ = archive_filter_bytes(handle, 0);
        in_entry_ = false;
    }
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(handle, &entry);
    if (status == ARCHIVE_EOF) {
        // libarchive also reports the end when the stream simply stops after an entry, which
        // is what a transfer cut short looks like. Only the end-of-archive marker, zero blocks
        // that libarchive consumes, shows that the sender finished.
        if (archive_filter_bytes(handle, 0) == end_of_entries_) {
            throw InfrastructureError(
                "the workspace stream ended early (no end-of-archive marker)",
                "the worker probably stopped while sending it; run the build again");
        }
        return nullptr;
    }
    check(status);
    in_entry_ = true;
    return entry;
}

bool TarReader::read_block(const char*& data, std::size_t& size, std::int64_t& offset) {
    const void* block = nullptr;
    la_int64_t block_offset = 0;
    const int status = archive_read_data_block(archive_.get(), &block, &size, &block_offset);
    if (status == ARCHIVE_EOF) {
        return false;
    }
    check(status);
    data = static_cast<const char*>(block);
    offset = block_offset;
    return true;
}

la_ssize_t TarReader::read_callback(archive* handle, void* client, const void** block) {
    auto* reader = static_cast<TarReader*>(client);
    // An exception must not unwind through libarchive's C code: it is kept and rethrown by
    // check() once libarchive has returned.
    try {
        const std::size_t got = reader->source_(reader->buffer_.data(), reader->buffer_.size());
        *block = reader->buffer_.data();
        return static_cast<la_ssize_t>(std::min(got, reader->buffer_.size()));
    } catch (...) {
        reader->source_error_ = std::current_exception();
        archive_set_error(handle, EIO, "reading the stream failed");
        return -1;
    }
}

// Throws for a libarchive failure, or the source's own exception when that was the cause.
// ARCHIVE_WARN passes: it flags oddities (an unknown pax keyword) in a usable entry.
void TarReader::check(int status) {
    if (status >= ARCHIVE_WARN) {
        return;
    }
    if (source_error_) {
        std::rethrow_exception(source_error_);
    }
    const char* message = archive_error_string(archive_.get());
    throw InfrastructureError(std::string("the workspace stream is not a valid tar stream: ") +
                              (message != nullptr ? message : "libarchive gave no reason"));
}

} // namespace contractor::transfer

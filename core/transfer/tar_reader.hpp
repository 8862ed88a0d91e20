#pragma once

#include "transfer/handles.hpp"
#include "transfer/safe_extract.hpp"

#include <cstdint>
#include <exception>
#include <vector>

namespace contractor::transfer {

// Reads a tar stream (ustar, pax or GNU) from a ByteSource, one entry at a time, and insists
// on the end-of-archive marker so that a stream cut short is never taken for a whole one.
class TarReader {
public:
    // Starts reading; throws InfrastructureError when the stream does not look like tar.
    explicit TarReader(const ByteSource& source);
    TarReader(const TarReader&) = delete;
    TarReader& operator=(const TarReader&) = delete;

    // The next entry (valid until the next call), or nullptr after the end-of-archive marker.
    // Throws InfrastructureError for a corrupt stream or one that ends without the marker,
    // and rethrows whatever the source threw.
    archive_entry* next();
    // The next block of the current entry's data at `offset` in the file; false at its end.
    bool read_block(const char*& data, std::size_t& size, std::int64_t& offset);

private:
    static la_ssize_t read_callback(archive* handle, void* client, const void** block);
    void check(int status);

    const ByteSource& source_;
    std::vector<char> buffer_;
    std::exception_ptr source_error_;
    ArchiveReadPtr archive_;
    bool in_entry_ = false;
    std::int64_t end_of_entries_ = 0; // stream position after the last entry's data
};

} // namespace contractor::transfer

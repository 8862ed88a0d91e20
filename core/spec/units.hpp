#pragma once

#include "util/error.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

// Quantities with units as a spec writes them: sizes (512MiB, 2G), durations (90s, 1h30m) and
// rates (10Mbit/s, 1MiB/s). Everything is converted to base units: bytes, seconds, bytes per
// second.
namespace contractor::spec {

// A quantity that is malformed, has an unknown unit, or is out of range; the message says which.
// A usage error (exit 2): the quantity came from the user, on the command line or in a file.
class UnitError : public UsageError {
public:
    explicit UnitError(const std::string& what) : UsageError(what) {}
};

// Bytes in `text`. K, M, G, T and KiB, MiB, GiB, TiB are powers of 1024 (as in QEMU and
// libvirt); KB, MB, GB, TB are powers of 1000; B is bytes. A unit is required.
std::uint64_t parse_size(std::string_view text);

// Seconds in `text`: a number with s, m, h or d, several of them in a row (1h30m), or a bare
// number of seconds.
std::uint64_t parse_duration(std::string_view text);

// Bytes per second in `text`: bit/s, kbit/s, Mbit/s, Gbit/s (powers of 1000, as networks
// count) or B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s, GiB/s. Rounded down to whole bytes.
std::uint64_t parse_rate(std::string_view text);

// A readable form of a base-unit quantity: "512 MiB", "1h 30m", "10 Mbit/s".
std::string format_size(std::uint64_t bytes);
std::string format_duration(std::uint64_t seconds);
std::string format_rate(std::uint64_t bytes_per_second);

} // namespace contractor::spec

#include "manager-agent/exchange_disk.hpp"

#include "virt/domain_xml.hpp"

#include <charconv>

namespace contractor::manager {

namespace {

constexpr std::uint64_t mebibyte = 1024 * 1024;

// Parses a whole decimal number; nullopt for anything else.
std::optional<std::uint64_t> whole_number(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) {
        return std::nullopt;
    }
    return value;
}

} // namespace

std::string find_exchange_device(std::uint64_t bytes) {
    // Shell builtins only (read, test, arithmetic): every fork costs tens of milliseconds
    // under TCG.
    return std::string("d=; for b in /sys/block/vd*; do s=; { read -r s < \"$b/serial\"; } "
                       "2>/dev/null; [ \"$s\" = ") +
           virt::exchange_serial +
           " ] && d=${b##*/}; done; "
           "[ -n \"$d\" ] || { echo 'the worker has no exchange disk' >&2; exit 70; }; "
           "n=0; while read -r size < /sys/block/$d/size && [ $((size * 512)) -lt " +
           std::to_string(bytes) +
           " ]; do n=$((n + 1)); "
           "[ $n -le 600 ] || { echo 'the exchange disk did not grow' >&2; exit 71; }; "
           "sleep 0.05; done; d=/dev/$d";
}

std::string unpack_from_exchange(std::uint64_t device_bytes, std::uint64_t bytes) {
    // O_DIRECT: the guest's kernel read the disk's first sectors at boot (a partition table
    // scan) and would serve those from its cache.
    return find_exchange_device(device_bytes) + " && sudo -n dd if=\"$d\" bs=1M count=" +
           std::to_string((bytes + mebibyte - 1) / mebibyte) +
           " iflag=direct status=none | tar -x -f - -C /workspace --no-same-owner";
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_number_pair(std::string_view printed) {
    while (!printed.empty() && (printed.back() == '\n' || printed.back() == '\r')) {
        printed.remove_suffix(1);
    }
    const auto space = printed.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    const auto first = whole_number(printed.substr(0, space));
    const auto second = whole_number(printed.substr(space + 1));
    if (!first || !second) {
        return std::nullopt;
    }
    return std::pair{*first, *second};
}

std::optional<PackedStream> parse_packed(std::string_view printed) {
    const auto numbers = parse_number_pair(printed);
    if (!numbers || numbers->second > 255) {
        return std::nullopt;
    }
    return PackedStream{numbers->first, static_cast<int>(numbers->second)};
}

} // namespace contractor::manager

#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// The worker's exchange disk (vm::BootRequest::exchange): a raw file on this side, /dev/vdX in
// the worker, that carries a workspace's tar stream instead of the worker's sshd. Under TCG
// the guest spends about as long decrypting an SSH stream as unpacking it; a disk costs
// neither side any cryptography. The bytes are the same stream with the same checks: the CLI
// unpacks the returning one with its safe extractor, and export-size counts all of it.
//
// The guest can write no more than the disk's size, which this side sets for each use: the
// input (a tar stream, or the filesystem of input_filesystem.hpp at the disk's start), then
// export-size and 1 MiB more after that filesystem for the returning stream. So the file holds
// at most the input's filesystem and one stream.
namespace contractor::manager {

// Inputs smaller than this go over SSH as before: the exchange disk costs the worker one
// `sudo` (a second or two under TCG), which only a larger stream wins back.
inline constexpr std::uint64_t exchange_input_threshold = 4 * 1024 * 1024;

// A shell fragment for the worker that sets $d to the exchange disk's device (found by its
// serial, /sys/block/*/serial) and waits until the guest sees at least `bytes` of it; it exits
// 70 when there is no such disk and 71 when the disk does not grow within 30 s.
std::string find_exchange_device(std::uint64_t bytes);

// Unpacks the first `bytes` of the exchange disk into /workspace (as the SSH user, owners not
// applied; only reading the device takes sudo). The stream ends with tar's end marker.
std::string unpack_from_exchange(std::uint64_t device_bytes, std::uint64_t bytes);

// "A B" (and line ends): two whole decimal numbers, as the worker prints them; nullopt for
// anything else.
std::optional<std::pair<std::uint64_t, std::uint64_t>> parse_number_pair(std::string_view printed);

// What the pack command printed (input_filesystem.hpp's pack_workspace_command) (the worker's word,
// bounded by the caller): the stream's size and tar's exit status, or nullopt for anything else.
struct PackedStream {
    std::uint64_t bytes = 0;
    int tar_status = 0;
};
std::optional<PackedStream> parse_packed(std::string_view printed);

} // namespace contractor::manager

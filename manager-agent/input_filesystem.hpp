#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

// A large input reaches the worker as a filesystem, not as a tar stream to unpack: this side
// unpacks the CLI's stream into a folder and makes a read-only ext4 filesystem of it at the
// start of the exchange disk (mke2fs -d, natively: about 2 s for 200 MiB of 20,000 files where
// unpacking them in the worker took 45 s under TCG). The worker mounts it as the lower layer of
// an overlay at /workspace; what the build writes lands in the upper layer, on the worker's own
// disk (its disk limit counts it). When the build ends, the upper layer is exactly what the
// build changed: the worker sends only that, with the list of what it removed, and the CLI
// applies it to its own copy of the input (transfer::SafeExtractor::extract_base).
//
// The stream and the folder come from the CLI, never from the worker. The filesystem image is
// made here and only read by the worker (mounted read-only; a worker that writes into the raw
// disk spoils only its own view). Nothing the worker wrote is ever parsed as a filesystem.
namespace contractor::manager {

// The worker's SSH user, whose files the input's become.
struct WorkerUser {
    unsigned uid = 0;
    unsigned gid = 0;
};

// Asks the worker for it: a shell command printing "UID GID".
std::string worker_user_command();
// What that command printed; nullopt for anything else.
std::optional<WorkerUser> parse_worker_user(std::string_view printed);

// Unpacks the tar file `input` into a folder (in memory when /dev/shm has room, else in
// `scratch`; removed before returning) and makes an ext4 filesystem of it in `image`
// (written in place: QEMU holds the file open), its files owned by `user` (mke2fs in a user
// namespace that maps this account to the worker's). Returns the filesystem's size, a whole
// number of MiB, or nullopt when a tool is missing or fails (said in CONTRACTOR_DEBUG output);
// the input then goes in as a tar stream.
std::optional<std::uint64_t> make_input_filesystem(const std::filesystem::path& input,
                                                   const std::filesystem::path& scratch,
                                                   const std::filesystem::path& image,
                                                   WorkerUser user);

// The worker's side, as root: mounts the filesystem (the first `bytes` of the exchange disk)
// read-only and an overlay over it at /workspace, the upper layer owned by `user`. Exits 0, or
// non-zero with nothing left mounted.
std::string mount_input_command(std::uint64_t bytes, WorkerUser user);

// What copy-out sends.
enum class ExportShape {
    whole,   // /workspace, all of it
    changes, // the list of removed paths, then what the overlay's upper layer holds; the
             // whole workspace when the worker cannot tell (no python3)
};

// Packs /workspace as root onto the exchange disk from `offset` (a whole number of MiB) and
// prints "BYTES STATUS" (exchange_disk.hpp's parse_packed).
std::string pack_workspace_command(std::uint64_t device_bytes, std::uint64_t offset,
                                   ExportShape shape);

} // namespace contractor::manager

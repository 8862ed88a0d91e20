#pragma once

#include <cstddef>
#include <filesystem>
#include <string_view>

// A worker image file is checked before anything uses it. It comes from the spec, so from the
// repository being built: a qcow2 whose backing file (or external data file) names a host file
// would hand that file to the worker as a disk, and a file whose bytes say one format while
// QEMU is told another can make QEMU read it as something else. The header is read here, by
// contractor, never by qemu-img: probing an untrusted image with QEMU is what has to be avoided.
namespace contractor::image {

// The formats contractor boots. The format comes from the bytes (the qcow2 magic or not),
// the same test core/vm/machine.cpp uses to tell QEMU the backing format explicitly (`-F`),
// so QEMU never probes the file.
enum class DiskFormat { raw, qcow2 };

// "raw" or "qcow2".
std::string_view to_string(DiskFormat format);

// How much of the file's start `check_disk_bytes` wants: the largest qcow2 cluster, which is
// where the header and its extensions must lie.
inline constexpr std::size_t disk_head_size = 2 * 1024 * 1024;

// The format of the disk image named `name`, judged from its first bytes (`head`, up to
// disk_head_size) and its last 512 (`tail`; a DMG's trailer). Accepted: qcow2 version 2 or 3
// without a backing file, an external data file, encryption or unknown incompatible features;
// and raw, which is anything that carries no other format's signature. A name ending in
// .qcow2 must be a qcow2; names of other formats (.vmdk, .vdi, ...) are refused. Throws
// UsageError (exit 2) saying what the file is and why it is not booted.
DiskFormat check_disk_bytes(std::string_view head, std::string_view tail,
                            const std::filesystem::path& name);

// Reads the header of the file `file` (a regular file; opened without blocking, so a FIFO
// cannot hang it) and checks it with check_disk_bytes.
DiskFormat check_disk_image(const std::filesystem::path& file);

} // namespace contractor::image

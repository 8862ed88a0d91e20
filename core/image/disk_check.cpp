#include "image/disk_check.hpp"

#include "util/error.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace contractor::image {
namespace {

constexpr std::string_view qcow2_magic{"QFI\xfb", 4};

// The qcow2 header (docs/interop/qcow2.txt in QEMU), big-endian. Version 2 ends at byte 72,
// version 3 adds the feature bits and the header length.
constexpr std::size_t qcow2_v2_header = 72;
constexpr std::size_t qcow2_v3_header = 104;
constexpr std::uint64_t incompatible_corrupt = 1U << 1;
constexpr std::uint64_t incompatible_data_file = 1U << 2;
// Dirty, corrupt, external data file, compression type, extended L2 entries: the ones QEMU
// knows today. Any other bit is a feature we cannot vouch for.
constexpr std::uint64_t incompatible_known = 0x1f;
constexpr std::uint32_t extension_end = 0;
constexpr std::uint32_t extension_data_file = 0x44415441;
// Header extensions are few (backing format, feature names, bitmaps, encryption, data file);
// this bounds the walk over a hostile header.
constexpr int max_extensions = 256;

std::uint64_t big_endian(std::string_view bytes, std::size_t offset, std::size_t size) {
    std::uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i) {
        value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
    }
    return value;
}

// Throws the refusal for the image `name`.
[[noreturn]] void refuse(const std::filesystem::path& name, const std::string& problem,
                         std::string hint = "use a raw or qcow2 image") {
    throw UsageError("worker image " + name.string() + " " + problem, std::move(hint));
}

// A file name stored in the image, for the message: at most 256 bytes, control characters
// escaped (it comes from an untrusted file and ends up on a terminal).
std::string stored_name(std::string_view head, std::uint64_t offset, std::uint64_t size) {
    if (offset >= head.size()) {
        return "(beyond the header)";
    }
    const std::size_t length =
        static_cast<std::size_t>(std::min<std::uint64_t>({size, 256, head.size() - offset}));
    return util::quoted(head.substr(static_cast<std::size_t>(offset), length));
}

const std::string flatten_hint =
    "use an image without one; if you trust the image and the file it names, 'qemu-img convert "
    "-O qcow2 IMAGE flat.qcow2' makes one";

DiskFormat check_qcow2(std::string_view head, const std::filesystem::path& name) {
    if (head.size() < qcow2_v2_header) {
        refuse(name, "is a truncated qcow2 image");
    }
    const std::uint64_t version = big_endian(head, 4, 4);
    if (version != 2 && version != 3) {
        refuse(name, "is a qcow2 image of version " + std::to_string(version) +
                         " (contractor boots versions 2 and 3)");
    }
    const std::uint64_t backing_offset = big_endian(head, 8, 8);
    if (backing_offset != 0) {
        refuse(name,
               "is a qcow2 image with a backing file (" +
                   stored_name(head, backing_offset, big_endian(head, 16, 4)) +
                   "): the worker would see that file of this machine as its disk",
               flatten_hint);
    }
    const std::uint64_t cluster_bits = big_endian(head, 20, 4);
    if (cluster_bits < 9 || cluster_bits > 21) {
        refuse(name,
               "is a malformed qcow2 image (cluster_bits " + std::to_string(cluster_bits) + ")");
    }
    if (big_endian(head, 32, 4) != 0) {
        refuse(name, "is an encrypted qcow2 image", "use an image without encryption");
    }
    std::size_t extensions = qcow2_v2_header;
    if (version == 3) {
        if (head.size() < qcow2_v3_header) {
            refuse(name, "is a truncated qcow2 image");
        }
        const std::uint64_t incompatible = big_endian(head, 72, 8);
        if ((incompatible & incompatible_data_file) != 0) {
            refuse(name,
                   "is a qcow2 image with an external data file: the worker would see that file "
                   "of this machine as its disk",
                   flatten_hint);
        }
        if ((incompatible & incompatible_corrupt) != 0) {
            refuse(name, "is a qcow2 image marked corrupt",
                   "check it with 'qemu-img check' on a copy you trust");
        }
        if ((incompatible & ~incompatible_known) != 0) {
            char bits[32];
            std::snprintf(bits, sizeof bits, "0x%llx",
                          static_cast<unsigned long long>(incompatible & ~incompatible_known));
            refuse(name, std::string("is a qcow2 image with incompatible features contractor "
                                     "does not know (") +
                             bits + ")");
        }
        extensions = static_cast<std::size_t>(big_endian(head, 100, 4));
        if (extensions < qcow2_v3_header) {
            refuse(name,
                   "is a malformed qcow2 image (header length " + std::to_string(extensions) + ")");
        }
    }
    // The header extensions fill the rest of the first cluster. A data-file extension without
    // its feature bit is not used by QEMU today; refused all the same, as a statement of
    // intent nobody should need in a worker image.
    const std::size_t end = std::min<std::size_t>(head.size(), std::size_t{1} << cluster_bits);
    for (int count = 0; count < max_extensions; ++count) {
        if (extensions + 8 > end) {
            break;
        }
        const auto type = static_cast<std::uint32_t>(big_endian(head, extensions, 4));
        const std::uint64_t length = big_endian(head, extensions + 4, 4);
        if (type == extension_end) {
            break;
        }
        if (length > end - extensions - 8) {
            refuse(name, "is a malformed qcow2 image (a header extension runs past its cluster)");
        }
        if (type == extension_data_file) {
            refuse(name,
                   "is a qcow2 image that names an external data file (" +
                       stored_name(head, extensions + 8, length) + ")",
                   flatten_hint);
        }
        extensions += 8 + static_cast<std::size_t>((length + 7) / 8 * 8);
    }
    return DiskFormat::qcow2;
}

// VMDK's text descriptor, as QEMU's probe reads it: comment and blank lines, then a
// "version=" line.
bool is_vmdk_descriptor(std::string_view head) {
    if (head.starts_with("# Disk DescriptorFile")) {
        return true;
    }
    std::size_t at = 0;
    while (at < head.size()) {
        if (head[at] == '#') {
            const std::size_t newline = head.find('\n', at);
            if (newline == std::string_view::npos) {
                return false;
            }
            at = newline + 1;
        } else if (head[at] == ' ' || head[at] == '\r' || head[at] == '\n') {
            ++at;
        } else {
            return head.substr(at).starts_with("version=");
        }
    }
    return false;
}

// The format another signature at the start of `head` (or in `tail`) names, or empty. These
// are the formats QEMU's probe recognises besides raw and qcow2.
std::string other_format(std::string_view head, std::string_view tail) {
    struct Signature {
        std::string_view bytes;
        std::size_t offset;
        std::string_view format;
    };
    static constexpr std::array<Signature, 13> signatures = {{
        {{"QED\0", 4}, 0, "QED"},
        {"KDMV", 0, "VMDK"},
        {"COWD", 0, "VMDK (version 3)"},
        {{"\x7f\x10\xda\xbe", 4}, 0x40, "VDI"},
        {"<<< Oracle VM VirtualBox Disk Image >>>", 0, "VDI"},
        {"<<< QEMU VM Virtual Disk Image >>>", 0, "VDI"},
        {"vhdxfile", 0, "VHDX"},
        {"conectix", 0, "VHD (VPC)"},
        {{"LUKS\xba\xbe", 6}, 0, "LUKS"},
        {"#!/bin/sh\n#V2.0 Format\n", 0, "cloop"},
        {"Bochs Virtual HD Image", 0, "Bochs"},
        {"WithoutFreeSpace", 0, "Parallels"},
        {"WithouFreSpacExt", 0, "Parallels"},
    }};
    for (const auto& signature : signatures) {
        if (head.size() >= signature.offset + signature.bytes.size() &&
            head.substr(signature.offset, signature.bytes.size()) == signature.bytes) {
            return std::string(signature.format);
        }
    }
    if (is_vmdk_descriptor(head.substr(0, 4096))) {
        return "VMDK (a text descriptor that names other files)";
    }
    if (tail.starts_with("koly")) {
        return "DMG";
    }
    return {};
}

// File name extensions of formats contractor does not boot (QEMU's DMG probe goes by the
// name alone).
bool names_other_format(const std::string& extension) {
    static constexpr std::array<std::string_view, 13> others = {
        ".qcow", ".qed",  ".vmdk", ".vdi", ".vhd",   ".vhdx", ".vpc",
        ".dmg",  ".luks", ".hdd",  ".hds", ".bochs", ".cloop"};
    return std::find(others.begin(), others.end(), extension) != others.end();
}

} // namespace

std::string_view to_string(DiskFormat format) {
    return format == DiskFormat::qcow2 ? "qcow2" : "raw";
}

DiskFormat check_disk_bytes(std::string_view head, std::string_view tail,
                            const std::filesystem::path& name) {
    std::string extension = name.extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (head.empty()) {
        refuse(name, "is empty");
    }
    if (head.starts_with(qcow2_magic)) {
        // A .raw or .img file whose bytes are a clean qcow2 is booted as the qcow2 it is:
        // QEMU is told "qcow2", and it was checked as one here.
        return check_qcow2(head, name);
    }
    if (const std::string format = other_format(head, tail); !format.empty()) {
        refuse(name, "is a " + format + " image; contractor boots raw and qcow2 images only");
    }
    if (extension == ".qcow2") {
        refuse(name, "is named .qcow2 but is not a qcow2 image (its first bytes are not QFI\\xfb)",
               "rename it if it is a raw disk (.img or .raw), or use the qcow2 you meant");
    }
    if (names_other_format(extension)) {
        refuse(name, "is named " + extension + ", a format contractor does not boot");
    }
    return DiskFormat::raw;
}

DiskFormat check_disk_image(const std::filesystem::path& file) {
    // O_NONBLOCK: a FIFO put where the image should be must not hang the plan.
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        const int error = errno;
        if (error == ENOENT) {
            throw UsageError("worker image " + file.string() + " does not exist",
                             "build one with 'contractor image build worker --output FILE'");
        }
        throw UsageError("worker image " + file.string() +
                         ": cannot read: " + std::strerror(error));
    }
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
        refuse(file, "is not a regular file");
    }
    const auto read_at = [&](std::size_t size, off_t offset) {
        std::string bytes(size, '\0');
        std::size_t done = 0;
        while (done < size) {
            const ssize_t got =
                ::pread(fd, bytes.data() + done, size - done, offset + static_cast<off_t>(done));
            if (got < 0 && errno == EINTR) {
                continue;
            }
            if (got < 0) {
                throw UsageError("worker image " + file.string() +
                                 ": cannot read: " + std::strerror(errno));
            }
            if (got == 0) {
                break;
            }
            done += static_cast<std::size_t>(got);
        }
        bytes.resize(done);
        return bytes;
    };
    const auto size = static_cast<std::size_t>(status.st_size);
    const std::string head = read_at(std::min(size, disk_head_size), 0);
    const std::string tail =
        size >= 512 ? read_at(512, static_cast<off_t>(size - 512)) : std::string();
    return check_disk_bytes(head, tail, file);
}

} // namespace contractor::image

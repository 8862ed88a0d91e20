// Tests for image/disk_check.hpp: worker image headers read by contractor, never by QEMU.
#include "image/disk_check.hpp"
#include "proc/process.hpp"
#include "temporary_directory.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <sys/stat.h>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::image::check_disk_bytes;
using contractor::image::check_disk_image;
using contractor::image::DiskFormat;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

void put_big_endian(std::string& bytes, std::size_t offset, std::size_t size, std::uint64_t value) {
    for (std::size_t i = 0; i < size; ++i) {
        bytes[offset + size - 1 - i] = static_cast<char>(value & 0xff);
        value >>= 8;
    }
}

// The first cluster of a qcow2 image as qemu-img writes it: 64 KiB clusters, 1 MiB disk,
// no header extensions (their end marker is the zeros after the header).
std::string qcow2_header(int version = 3) {
    std::string head(65536, '\0');
    head.replace(0, 4, "QFI\xfb", 4);
    put_big_endian(head, 4, 4, static_cast<std::uint64_t>(version));
    put_big_endian(head, 20, 4, 16);
    put_big_endian(head, 24, 8, 1 << 20);
    if (version == 3) {
        put_big_endian(head, 96, 4, 4);
        put_big_endian(head, 100, 4, 104);
    }
    return head;
}

// What check_disk_bytes says about `head` named `name`: the format, or the refusal.
std::string verdict(const std::string& head, const std::string& name = "worker.img",
                    const std::string& tail = {}) {
    try {
        return std::string(image::to_string(check_disk_bytes(head, tail, name)));
    } catch (const UsageError& error) {
        return error.what();
    }
}

} // namespace

TEST_CASE("clean qcow2 images and raw disks are accepted", "[disk-check]") {
    CHECK(verdict(qcow2_header(3), "worker.qcow2") == "qcow2");
    CHECK(verdict(qcow2_header(2), "worker.qcow2") == "qcow2");
    // A .img or .raw whose bytes are a clean qcow2 is booted as the qcow2 it is.
    CHECK(verdict(qcow2_header(3), "worker.img") == "qcow2");
    CHECK(verdict(qcow2_header(3), "worker.raw") == "qcow2");
    CHECK(verdict(qcow2_header(3), "worker") == "qcow2");
    // Raw: an MBR, an ext4 superblock, zeros.
    std::string mbr(4096, '\0');
    mbr[510] = '\x55';
    mbr[511] = '\xaa';
    CHECK(verdict(mbr, "disk.raw") == "raw");
    CHECK(verdict(std::string(4096, '\0'), "worker.img") == "raw");
    CHECK(verdict(std::string(4096, '\0'), "debian-12-genericcloud-amd64") == "raw");
    CHECK(image::to_string(DiskFormat::raw) == "raw");
}

TEST_CASE("a qcow2 with a backing file or an external data file is refused", "[disk-check]") {
    SECTION("a backing file") {
        std::string head = qcow2_header();
        head.replace(512, 11, "/etc/passwd");
        put_big_endian(head, 8, 8, 512);
        put_big_endian(head, 16, 4, 11);
        CHECK(verdict(head, "x.qcow2") ==
              "worker image x.qcow2 is a qcow2 image with a backing file ('/etc/passwd'): the "
              "worker would see that file of this machine as its disk");
        // Version 2 has one too.
        std::string v2 = qcow2_header(2);
        put_big_endian(v2, 8, 8, 512);
        CHECK_THAT(verdict(v2), Contains("with a backing file"));
        // A name with control characters is shown escaped.
        head.replace(512, 11,
                     "\x1b]52;c;x\x07"
                     "ab");
        CHECK_THAT(verdict(head), Contains("\\x1b]52;c;x\\x07ab"));
        // An offset past the header.
        put_big_endian(head, 8, 8, 1ULL << 40);
        CHECK_THAT(verdict(head), Contains("with a backing file ((beyond the header))"));
    }
    SECTION("the external data file feature bit") {
        std::string head = qcow2_header();
        put_big_endian(head, 72, 8, 1U << 2);
        CHECK_THAT(verdict(head), Contains("is a qcow2 image with an external data file"));
    }
    SECTION("a data file name extension without the bit") {
        std::string head = qcow2_header();
        put_big_endian(head, 104, 4, 0x44415441);
        put_big_endian(head, 108, 4, 10);
        head.replace(112, 10, "/dev/sda1x");
        CHECK_THAT(verdict(head), Contains("names an external data file ('/dev/sda1x')"));
    }
    SECTION("after other header extensions") {
        std::string head = qcow2_header();
        put_big_endian(head, 104, 4, 0xe2792aca); // backing format name, 3 bytes, padded to 8
        put_big_endian(head, 108, 4, 3);
        head.replace(112, 3, "raw");
        put_big_endian(head, 120, 4, 0x44415441);
        put_big_endian(head, 124, 4, 4);
        head.replace(128, 4, "/etc");
        CHECK_THAT(verdict(head), Contains("names an external data file ('/etc')"));
        put_big_endian(head, 120, 4, 0x6803f857); // a feature name table instead: fine
        CHECK(verdict(head) == "qcow2");
    }
}

TEST_CASE("other qcow2 headers contractor does not boot", "[disk-check]") {
    std::string head = qcow2_header();
    SECTION("version 1 (qcow) and unknown versions") {
        put_big_endian(head, 4, 4, 1);
        CHECK_THAT(verdict(head), Contains("is a qcow2 image of version 1"));
        put_big_endian(head, 4, 4, 4);
        CHECK_THAT(verdict(head), Contains("of version 4"));
    }
    SECTION("encrypted") {
        put_big_endian(head, 32, 4, 2);
        CHECK_THAT(verdict(head), Contains("is an encrypted qcow2 image"));
    }
    SECTION("marked corrupt") {
        put_big_endian(head, 72, 8, 1U << 1);
        CHECK_THAT(verdict(head), Contains("marked corrupt"));
    }
    SECTION("an incompatible feature nobody knows yet") {
        put_big_endian(head, 72, 8, (1ULL << 40) | 1U);
        CHECK_THAT(verdict(head), Contains("incompatible features contractor does not know "
                                           "(0x10000000000)"));
    }
    SECTION("dirty and extended L2 are fine") {
        put_big_endian(head, 72, 8, (1U << 0) | (1U << 4));
        CHECK(verdict(head) == "qcow2");
    }
    SECTION("truncated and malformed headers") {
        CHECK_THAT(verdict(head.substr(0, 50)), Contains("truncated qcow2"));
        CHECK_THAT(verdict(head.substr(0, 90)), Contains("truncated qcow2"));
        put_big_endian(head, 20, 4, 40);
        CHECK_THAT(verdict(head), Contains("malformed qcow2 image (cluster_bits 40)"));
        put_big_endian(head, 20, 4, 16);
        put_big_endian(head, 100, 4, 8);
        CHECK_THAT(verdict(head), Contains("malformed qcow2 image (header length 8)"));
        put_big_endian(head, 100, 4, 104);
        put_big_endian(head, 104, 4, 0x6803f857);
        put_big_endian(head, 108, 4, 0xfffffff0);
        CHECK_THAT(verdict(head), Contains("runs past its cluster"));
    }
}

TEST_CASE("other formats' signatures are refused", "[disk-check]") {
    const auto starting_with = [](const std::string& bytes, std::size_t offset = 0) {
        std::string head(4096, '\0');
        head.replace(offset, bytes.size(), bytes);
        return head;
    };
    const auto format_of = [&](const std::string& head, const std::string& tail = {}) {
        const std::string what = verdict(head, "worker.img", tail);
        REQUIRE_THAT(what, Contains("; contractor boots raw and qcow2 images only"));
        return what.substr(std::string("worker image worker.img is a ").size(),
                           what.find(" image;") -
                               std::string("worker image worker.img is a ").size());
    };
    CHECK(format_of(starting_with(std::string("QED\0", 4))) == "QED");
    CHECK(format_of(starting_with("KDMV")) == "VMDK");
    CHECK(format_of(starting_with("COWD")) == "VMDK (version 3)");
    CHECK(format_of(starting_with("# Disk DescriptorFile\nversion=1\n")) ==
          "VMDK (a text descriptor that names other files)");
    CHECK(format_of(
              starting_with("# a comment\n\n  \nversion=1\nRW 2048 FLAT \"/etc/shadow\" 0\n")) ==
          "VMDK (a text descriptor that names other files)");
    CHECK(format_of(starting_with(std::string("\x7f\x10\xda\xbe", 4), 0x40)) == "VDI");
    CHECK(format_of(starting_with("<<< Oracle VM VirtualBox Disk Image >>>\n")) == "VDI");
    CHECK(format_of(starting_with("vhdxfile")) == "VHDX");
    CHECK(format_of(starting_with("conectix")) == "VHD (VPC)");
    CHECK(format_of(starting_with(std::string("LUKS\xba\xbe", 6))) == "LUKS");
    CHECK(format_of(starting_with("#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0\n")) == "cloop");
    CHECK(format_of(starting_with("Bochs Virtual HD Image")) == "Bochs");
    CHECK(format_of(starting_with("WithoutFreeSpace")) == "Parallels");
    CHECK(format_of(starting_with("WithouFreSpacExt")) == "Parallels");
    CHECK(format_of(std::string(4096, '\0'), "koly" + std::string(508, '\0')) == "DMG");
    // Text that is not a descriptor is just bytes of a raw disk.
    CHECK(verdict(starting_with("# not a descriptor\nhello=1\n")) == "raw");
}

TEST_CASE("the name must not say another format than the bytes", "[disk-check]") {
    const std::string raw(4096, '\0');
    CHECK(verdict(raw, "worker.qcow2") ==
          "worker image worker.qcow2 is named .qcow2 but is not a qcow2 image (its first bytes "
          "are not QFI\\xfb)");
    CHECK_THAT(verdict(raw, "WORKER.QCOW2"), Contains("is named .qcow2"));
    CHECK(verdict(raw, "disk.vmdk") ==
          "worker image disk.vmdk is named .vmdk, a format contractor does not boot");
    CHECK_THAT(verdict(raw, "disk.dmg"), Contains("is named .dmg"));
    CHECK_THAT(verdict(raw, "disk.vhd"), Contains("is named .vhd"));
    CHECK_THAT(verdict(std::string(), "worker.img"), Contains("worker.img is empty"));
}

TEST_CASE("check_disk_image reads the file itself", "[disk-check]") {
    const TemporaryDirectory directory;
    SECTION("a qcow2 and a raw file") {
        const fs::path qcow2 = directory.write("worker.qcow2", qcow2_header());
        CHECK(check_disk_image(qcow2) == DiskFormat::qcow2);
        const fs::path raw = directory.write("worker.img", std::string(100000, '\0'));
        CHECK(check_disk_image(raw) == DiskFormat::raw);
    }
    SECTION("a DMG trailer at the end of a larger file") {
        std::string bytes(1 << 20, '\0');
        bytes.replace(bytes.size() - 512, 4, "koly");
        CHECK_THROWS_WITH(check_disk_image(directory.write("w.img", bytes)),
                          Contains("is a DMG image"));
    }
    SECTION("missing, a folder, a FIFO") {
        CHECK_THROWS_WITH(check_disk_image(directory.path() / "missing.img"),
                          Contains("missing.img does not exist"));
        CHECK_THROWS_AS(check_disk_image(directory.path() / "missing.img"), UsageError);
        CHECK_THROWS_WITH(check_disk_image(directory.path()), Contains("is not a regular file"));
        const fs::path fifo = directory.path() / "fifo.img";
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        CHECK_THROWS_WITH(check_disk_image(fifo), Contains("is not a regular file"));
    }
}

// The header reading against what qemu-img really writes (when it is installed; it only
// creates files here, it never opens one of the test's).
TEST_CASE("images made by qemu-img", "[disk-check]") {
    if (!fs::exists("/usr/bin/qemu-img")) {
        WARN("qemu-img is not installed: skipped");
        return;
    }
    const TemporaryDirectory directory;
    const auto create = [&](const std::vector<std::string>& arguments) {
        std::vector<std::string> argv = {"/usr/bin/qemu-img", "create", "-q"};
        argv.insert(argv.end(), arguments.begin(), arguments.end());
        proc::run_checked(argv);
    };
    const fs::path backing = directory.write("base.raw", std::string(65536, '\0'));
    const fs::path clean = directory.path() / "clean.qcow2";
    create({"-f", "qcow2", clean.string(), "1M"});
    CHECK(check_disk_image(clean) == DiskFormat::qcow2);
    const fs::path v2 = directory.path() / "v2.qcow2";
    create({"-f", "qcow2", "-o", "compat=0.10", v2.string(), "1M"});
    CHECK(check_disk_image(v2) == DiskFormat::qcow2);
    const fs::path with_backing = directory.path() / "x.qcow2";
    create({"-f", "qcow2", "-b", backing.string(), "-F", "raw", with_backing.string()});
    CHECK_THROWS_WITH(check_disk_image(with_backing),
                      Contains("with a backing file ('" + backing.string() + "')"));
    const fs::path with_data_file = directory.path() / "d.qcow2";
    create({"-f", "qcow2", "-o", "data_file=" + (directory.path() / "data.raw").string(),
            with_data_file.string(), "1M"});
    CHECK_THROWS_WITH(check_disk_image(with_data_file), Contains("external data file"));
    const fs::path vmdk = directory.path() / "disk.img";
    create({"-f", "vmdk", vmdk.string(), "1M"});
    CHECK_THROWS_WITH(check_disk_image(vmdk), Contains("is a VMDK image"));
    const fs::path vdi = directory.path() / "disk2.img";
    create({"-f", "vdi", vdi.string(), "1M"});
    CHECK_THROWS_WITH(check_disk_image(vdi), Contains("is a VDI image"));
}

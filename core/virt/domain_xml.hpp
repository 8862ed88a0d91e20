#pragma once

#include "virt/accel.hpp"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace contractor::virt {

// How a VM starts: straight into a kernel (contractor's own images: fast) or through firmware
// and the image's bootloader (any other image).
struct DirectKernel {
    std::filesystem::path kernel;
    std::filesystem::path initrd;
    std::string command_line;
};

enum class Firmware { bios, efi };

// Everything the domain XML needs for one VM.
struct VmDefinition {
    std::string name;
    Accel accel = Accel::tcg;
    std::uint64_t memory_bytes = 1024ULL * 1024 * 1024;
    unsigned vcpus = 1;
    std::filesystem::path disk;    // qcow2 overlay, /dev/vda
    std::filesystem::path seed;    // raw FAT seed, /dev/vdb, read-only
    std::filesystem::path console; // serial console log file
    // A raw file for the workspace's tar streams (vm::BootRequest::exchange), /dev/vdc, serial
    // "contractor-exchange"; none when empty.
    std::filesystem::path exchange;
    // Where QEMU copies the first bytes of every frame the guest's card sends (a pcap stream,
    // gateway/nic_watch.hpp); none when empty.
    std::filesystem::path nic_record;
    std::optional<DirectKernel> direct_kernel;
    Firmware firmware = Firmware::bios;
    std::filesystem::path nvram; // EFI variables, for Firmware::efi
    int ssh_port = 0;            // host loopback port forwarded to the guest's port 22
    // restrict=on: the guest cannot open any connection. Workers always; the manager VM is
    // not restricted, because its gateway connects out for the workers' allowed requests.
    bool restrict_network = true;
    // Under TCG: the guest's clock counts instructions (QEMU -icount shift=N, 2^N ns each)
    // instead of following the host's clock, see tests/README.md "Nested builds under TCG".
    std::optional<unsigned> instruction_clock_shift;
};

// The libvirt domain XML. The NIC is QEMU user networking, with restrict=on for workers: the
// guest cannot open connections anywhere; the only way in is the loopback port forward to its
// sshd.
std::string domain_xml(const VmDefinition& vm);

// The guest address the forward points at (QEMU user networking's default guest address).
inline constexpr const char* guest_address = "10.0.2.15";
// The serial number the guest finds the exchange disk by (/sys/block/*/serial).
inline constexpr const char* exchange_serial = "contractor-exchange";
inline constexpr const char* guest_network = "10.0.2.15/24 10.0.2.2";
// QEMU user networking's DNS address: the worker's resolver when no phase has opened the
// gateway; nothing answers there (restrict=on), but the question shows in the card's record.
inline constexpr const char* guest_dns = "10.0.2.3";
// The bytes of each frame the card's record keeps (VmDefinition::nic_record): every header up
// to a DNS question of the longest name.
inline constexpr unsigned nic_snapshot_length = 512;

} // namespace contractor::virt

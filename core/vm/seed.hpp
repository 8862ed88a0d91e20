#pragma once

#include <filesystem>
#include <string>

namespace contractor::vm {

// What one boot of a VM is given: its identity and who may log in. Written fresh for every
// boot; nothing of it is stored in an image.
struct SeedContents {
    std::string hostname = "worker";
    std::string user = "worker";
    std::string authorized_key;   // "ssh-ed25519 AAAA..."
    std::string host_private_key; // OpenSSH format
    std::string host_public_key;  // "ssh-ed25519 AAAA..."
    std::string network;          // "ADDRESS/PREFIX GATEWAY"
    std::string instance_id;      // cloud-init's, unique per boot
    std::string dns;              // nameserver addresses, one a line; empty: no resolver
};

// Writes a 2 MiB FAT image labelled CIDATA at `file` (mkfs.vfat + mcopy: no mount, no root).
// It holds cloud-init NoCloud files (meta-data, user-data) for any image with cloud-init, and
// a contractor/ folder for contractor-init. The host private key is in it: the file is
// created 0600 and lives in the run's private folder.
void write_seed(const std::filesystem::path& file, const SeedContents& contents);

} // namespace contractor::vm

#include "vm/seed.hpp"

#include "proc/process.hpp"
#include "util/error.hpp"
#include "util/private_file.hpp"

#include <fstream>
#include <sys/stat.h>
#include <system_error>

namespace contractor::vm {
namespace fs = std::filesystem;

namespace {

// YAML block scalar lines, indented.
std::string indented(const std::string& text, const std::string& indent) {
    std::string out;
    std::size_t start = 0;
    while (start < text.size()) {
        std::size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        out += indent + text.substr(start, end - start) + "\n";
        start = end + 1;
    }
    return out;
}

std::string user_data(const SeedContents& seed) {
    return "#cloud-config\n"
           "users:\n"
           "  - name: " +
           seed.user +
           "\n"
           "    shell: /bin/bash\n"
           "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n"
           "    lock_passwd: true\n"
           "    ssh_authorized_keys:\n"
           "      - " +
           seed.authorized_key +
           "\n"
           "ssh_pwauth: false\n"
           "disable_root: true\n"
           "ssh_deletekeys: true\n"
           "ssh_genkeytypes: []\n"
           "ssh_keys:\n"
           "  ed25519_private: |\n" +
           indented(seed.host_private_key, "    ") + "  ed25519_public: " + seed.host_public_key +
           "\n";
}

} // namespace

void write_seed(const fs::path& file, const SeedContents& seed) {
    const fs::path staging = file.parent_path() / (file.filename().string() + ".d");
    fs::remove_all(staging);
    fs::create_directories(staging / "contractor");
    fs::permissions(staging, fs::perms::owner_all);
    const fs::path own = staging / "contractor";
    util::write_private_file(own / "authorized_keys", seed.authorized_key + "\n");
    util::write_private_file(own / "ssh_host_ed25519_key", seed.host_private_key);
    util::write_private_file(own / "ssh_host_ed25519_key.pub", seed.host_public_key + "\n");
    util::write_private_file(own / "hostname", seed.hostname + "\n");
    util::write_private_file(own / "network", seed.network + "\n");
    if (!seed.dns.empty()) {
        util::write_private_file(own / "dns", seed.dns + "\n");
    }
    util::write_private_file(staging / "meta-data", "instance-id: " + seed.instance_id +
                                                        "\nlocal-hostname: " + seed.hostname +
                                                        "\n");
    util::write_private_file(staging / "user-data", user_data(seed));

    std::error_code error;
    fs::remove(file, error);
    // 2 MiB: the smallest FAT image mkfs.vfat makes without complaint, ample for the files.
    proc::run_checked({"mkfs.vfat", "-C", "-n", "CIDATA", file.string(), "2048"}, {},
                      "is dosfstools installed (scripts/install-deps)?");
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    proc::run_checked({"mcopy", "-s", "-i", file.string(), (staging / "contractor").string(),
                       (staging / "meta-data").string(), (staging / "user-data").string(), "::/"},
                      {}, "is mtools installed (scripts/install-deps)?");
    fs::remove_all(staging);
}

} // namespace contractor::vm

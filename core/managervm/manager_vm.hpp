#pragma once

#include "image/cache.hpp"
#include "spec/config.hpp"
#include "ssh/session.hpp"
#include "virt/accel.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

// The manager VM, seen from the host: the long-lived VM that runs the workers in the nested
// topology. Created once from the manager image, then started and stopped; reached by SSH on
// a forwarded 127.0.0.1 port, with the host key pinned at creation.
namespace contractor::managervm {

// Where the manager lives and how big it is.
struct Settings {
    std::string libvirt_uri;         // host libvirt, e.g. qemu:///session
    std::filesystem::path directory; // disk, kernel, seed, console, keys, manager.json
    std::uint64_t memory_bytes = 4ULL << 30;
    unsigned cpus = 2;
    std::uint64_t disk_bytes = 32ULL << 30;
    virt::Accel accel = virt::Accel::tcg;
};

// Settings from the user config; `connect` (the --connect option) overrides its URI.
Settings settings_from(const spec::ManagerConfig& config, const std::string& connect,
                       virt::Accel accel);

// $XDG_DATA_HOME/contractor/manager, else ~/.local/share/contractor/manager.
std::filesystem::path default_directory();

// What the CLI keeps about the manager it created (manager.json, beside its disk).
struct Record {
    std::string domain = "contractor-manager";
    std::string libvirt_uri;
    std::string image;    // the manager image it was created from, NAME-DIGEST
    std::string host_key; // the pinned public host key
    int ssh_port = 0;     // the forwarded 127.0.0.1 port of the current (or last) boot
    std::int64_t created = 0;
    std::int64_t started = 0; // Unix time of the last start
    std::uint64_t memory_bytes = 0;
    unsigned cpus = 0;
    std::uint64_t disk_bytes = 0;
};

// Called with a line of progress for the user.
using Say = std::function<void(const std::string&)>;

class ManagerVm {
public:
    explicit ManagerVm(Settings settings);

    const Settings& settings() const { return settings_; }
    // Whether the manager was created (it has a disk and a record).
    bool created() const { return record_.has_value(); }
    const std::optional<Record>& record() const { return record_; }
    // libvirt's state of the domain ("running", "shut off", ...); nullopt when there is none.
    std::optional<std::string> domain_state() const;
    bool running() const { return domain_state() == std::string("running"); }

    // Creates the manager when needed (building the manager image first if it is not cached),
    // boots it and waits until sshd answers with the pinned key. Does nothing when it runs.
    void start(const Say& say);
    // Asks the manager to power off and waits up to `grace`, then pulls the plug.
    void stop(std::chrono::seconds grace, const Say& say);
    // Stops it and removes its domain, disk and keys.
    void destroy(const Say& say);

    // How to reach its sshd: 127.0.0.1, the forwarded port, user contractor, the pinned host
    // key and the client key from the manager's folder.
    ssh::Endpoint endpoint() const;
    // The last `lines` lines of its serial console.
    std::string console_tail(std::size_t lines) const;
    // Bytes its files take on the host (the disk grows as the manager writes).
    std::uint64_t disk_usage() const;

    // Waits until sshd answers with the pinned host key; throws InfrastructureError naming
    // the cause (the VM stopped, or nothing answered) with the console's last lines.
    void wait_for_ssh(std::chrono::seconds timeout) const;

private:
    void create(const Say& say);
    void boot(const Say& say);
    void save_record() const;

    Settings settings_;
    std::optional<Record> record_;
};

} // namespace contractor::managervm

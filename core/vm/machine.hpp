#pragma once

#include "image/cache.hpp"
#include "ssh/session.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace contractor::vm {

// What to boot and how big.
struct BootRequest {
    std::filesystem::path image; // a contractor image or any bootable disk
    // The cache entry `image` belongs to, when the caller knows it: spares hashing the disk
    // (minutes for a large image inside the manager VM under TCG).
    std::optional<image::CachedImage> cached_image;
    std::string user = "worker"; // the account the per-boot key logs into
    std::string name_prefix = "contractor-worker";
    std::uint64_t memory_bytes = 1024ULL * 1024 * 1024;
    unsigned vcpus = 1;
    virt::Accel accel = virt::Accel::tcg;
    std::filesystem::path runs_directory; // per-run folders (overlay, seed, console)
    // The disk's virtual size; 0 keeps the image's size. The worker grows its filesystem to it.
    std::uint64_t disk_bytes = 0;
    // Under TCG: the guest clock counts instructions (virt::VmDefinition).
    std::optional<unsigned> instruction_clock_shift;
    // The group QEMU runs as when it is not this user (the system instance inside the manager
    // VM, which leaves file ownership alone): the run folder, overlay, seed and console are
    // given to it, with only the access QEMU needs (virt::qemu_file_group).
    std::optional<unsigned> qemu_group;
    // A provisioned layer of this image (image::LayerStore) to start from instead of the bare
    // image: the overlay's backing file, read-only.
    std::optional<std::filesystem::path> layer;
    // A third disk for the workspace's tar streams (exchange.img in the run folder, 1 MiB at
    // first, grown with resize_exchange): the streams then skip the worker's sshd, whose
    // encryption bounds an SSH copy under TCG.
    bool exchange = false;
    // Asked while libvirt starts the domain (virt::Connection::define_and_start); true stops
    // the start, and boot throws. A job's deadline falls inside that call too.
    std::function<bool()> give_up_starting;
};

// A VM booted from an image through libvirt, with fresh per-boot credentials: a new host key
// (pinned: the client only ever accepts that key) and a new client key. The destructor
// destroys and undefines the domain and deletes the overlay, seed and console log, whatever
// happened before.
class Machine {
public:
    // Creates the overlay and seed, defines and starts the domain. Images from contractor's
    // cache (or copies of them, recognised by digest) boot straight into their kernel; others
    // boot through firmware (UEFI for GPT disks, BIOS otherwise) with cloud-init NoCloud.
    static std::unique_ptr<Machine>
    boot(virt::Connection& connection, const image::ImageCache& cache, const BootRequest& request);
    ~Machine();
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;

    // Waits until sshd accepts the per-boot key with the pinned host key. Throws
    // InfrastructureError naming the cause and the last console lines when the VM stops or
    // `timeout` passes. `check` runs between attempts (a job's budget: it throws to stop
    // waiting); an attempt in progress is ended by the watchdog stopping the VM.
    void wait_until_ready(std::chrono::seconds timeout, const std::function<void()>& check = {});

    // The SSH session that proved the VM ready, for the caller to keep using: inside the
    // manager VM under TCG every new SSH connection costs the worker's sshd most of a minute.
    std::unique_ptr<ssh::Session> take_ready_session() { return std::move(ready_session_); }

    // How to reach the VM with its per-boot credentials.
    const ssh::Endpoint& endpoint() const { return endpoint_; }
    const std::string& name() const { return name_; }
    bool boots_direct_kernel() const { return direct_kernel_; }
    // When define+start returned.
    std::chrono::steady_clock::time_point started_at() const { return started_at_; }
    // The serial console's log file (written by QEMU, its content by the guest).
    std::filesystem::path console_path() const;
    // The record of what the guest's card sends (virt::VmDefinition::nic_record), when the VM
    // has one (a VM booted by an older agent, adopted as a ready worker, has none).
    std::optional<std::filesystem::path> nic_record() const;
    // The last `lines` lines the VM printed on its serial console (from its last 64 KiB).
    std::string console_tail(std::size_t lines) const;
    // Pulls the plug now (the domain is destroyed, its files stay until this object goes away).
    // Never waits for the guest; safe to call from another thread while this one waits on it.
    void stop() { domain_->destroy(); }
    // Keeps the run's files and domain when destroyed (for debugging), under a "kept" lease:
    // the start of a job leaves it alone, `contractor gc` removes it.
    void keep();
    // Leaves the VM running for another process to take over (a ready worker): what adopt()
    // needs, its credentials included, goes into `file` in the run folder (0600), and this
    // object forgets the VM. The caller gives the run folder a lease of its own.
    void hand_over(const std::string& file);
    // Takes over a VM handed over with hand_over(`file`) in `run_directory`. Throws
    // InfrastructureError when the record cannot be read or the domain is gone.
    static std::unique_ptr<Machine> adopt(virt::Connection& connection,
                                          const std::filesystem::path& run_directory,
                                          const std::string& file);
    // The libvirt domain, for usage figures.
    const virt::Domain& domain() const { return *domain_; }
    // The folder holding the overlay, seed, console log and credentials of this VM.
    const std::filesystem::path& run_directory() const { return run_directory_; }
    // Bytes the overlay takes on the host: what the guest wrote to its disk.
    std::uint64_t disk_usage() const;

    // Moves the guest's writes to a new overlay on top of the current one, while it runs;
    // returns the old overlay, which nothing writes to from then on (a provisioned layer's
    // disk). The caller freezes the guest's filesystem around the call. Once per machine.
    std::filesystem::path split_disk();

    // The exchange disk's file on this side (BootRequest::exchange), when the VM has one.
    std::optional<std::filesystem::path> exchange_file() const;
    // Gives the exchange disk `bytes` (rounded up to a whole MiB, never below what the file
    // holds); the guest sees the new size a moment later. Returns the new size.
    std::uint64_t resize_exchange(std::uint64_t bytes);

private:
    Machine() = default;

    std::string name_;
    std::filesystem::path run_directory_;
    ssh::Endpoint endpoint_;
    bool direct_kernel_ = false;
    bool announces_ready_ = false;
    bool keep_ = false;
    bool disk_split_ = false;
    std::optional<unsigned> qemu_group_;
    std::chrono::steady_clock::time_point started_at_;
    std::unique_ptr<virt::Domain> domain_;
    std::unique_ptr<ssh::Session> ready_session_;
};

// A free TCP port on 127.0.0.1 (bound and released; QEMU binds it right after).
int free_loopback_port();

} // namespace contractor::vm

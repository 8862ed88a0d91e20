#pragma once

#include "connection/hop.hpp"
#include "gateway/nic_watch.hpp"
#include "image/cache.hpp"
#include "image/layer_store.hpp"
#include "limits/budget.hpp"
#include "manager-agent/outbox.hpp"
#include "policy/network_rule.hpp"
#include "protocol/job.hpp"
#include "vm/machine.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace contractor::gateway {
class Gateway;
}
namespace contractor::vm {
class Machine;
}
namespace contractor::virt {
class Connection;
}
namespace contractor::proc {
class BackgroundProcess;
}
namespace contractor::connection {
class Chain;
}

namespace contractor::manager {

class Watchdog;
class MachineProbe;

// Where the worker reaches its gateway: ports on the worker's own loopback that its sshd
// forwards, over the manager's SSH connection, to the gateway's listeners on the manager's
// loopback (ssh -R): the HTTP proxy on 127.0.0.1:3128, the DNS responder on 127.0.0.1:53
// (the worker's resolv.conf points there, over TCP), and each tcp rule's host:port on an
// address of its own (127.77.0.N, which the worker's /etc/hosts gives the rule's name). The
// worker's NIC stays restrict=on: it can open no connection to anything, and everything it
// reaches goes through the gateway's allowlist. (QEMU's guestfwd=...-cmd: would need QEMU to
// spawn processes, which libvirt's seccomp sandbox forbids: QEMU dies on the first
// connection.)
inline constexpr int worker_gateway_port = 3128;

// The disk a job's worker boots from: a file, and the cache entry it is (or is a copy of),
// when it is one of contractor's images (only those get provisioned layers).
struct WorkerImage {
    std::filesystem::path path;
    std::optional<image::CachedImage> entry;
};

// How the job's worker boots: image, layer, size, accelerator and clock.
vm::BootRequest worker_boot_request(const protocol::Job& job, const WorkerImage& image,
                                    const image::Layer* layer);

// Inside the manager VM, the image's cached disk and the layer are hashed again before every
// boot and must still be what the CLI copied in or the agent saved: a worker that escaped
// QEMU (an account that cannot write them) must not plant what every later build boots. Not
// memoised: a memo would be written by the same account as the files. `between_chunks` runs
// after every 4 MiB (a budget check: hashing takes tens of seconds under TCG). Throws
// InfrastructureError naming what changed; does nothing outside the manager VM.
void check_boot_files(const WorkerImage& image, const image::Layer* layer,
                      const std::function<void()>& between_chunks);

// Finds the job's image (a file, a cached image by name, or an entry the CLI copied in).
// Throws UsageError when it is not there.
WorkerImage resolve_worker_image(const protocol::Job& job);

// One worker, from boot to teardown: the VM, the SSH connection to it, the gateway and the way
// to it, and the watchdog that holds the worker to the job's budget from the moment it starts.
//
// Teardown, in this order (members are destroyed in reverse): the watchdog stops looking; the
// gateway tunnel's ssh is ended; the SSH connection is closed; the VM is destroyed (libvirt
// pulls the plug, never asks the guest) and its overlay, seed and console removed, unless it
// is kept for debugging; the gateway closes its listener and every relayed connection; the
// libvirt connection closes.
class WorkerSession {
public:
    // Boots the job's worker from `image`, or from `layer` (a provisioned layer of it) when
    // given, and waits until it answers, checking `budget` throughout (the watchdog watches
    // from the moment the domain starts, the boot included).
    WorkerSession(const protocol::Job& job, limits::Budget& budget, Outbox& outbox,
                  const WorkerImage& image, const image::Layer* layer = nullptr);
    ~WorkerSession();
    WorkerSession(const WorkerSession&) = delete;
    WorkerSession& operator=(const WorkerSession&) = delete;

    // The worker, to run commands on.
    connection::Hop& worker();
    gateway::Gateway& gateway() { return *gateway_; }
    // What the worker's card sent past the gateway so far (nothing when it has no record).
    gateway::NicUsage nic_usage();

    // Starts `phase`: every connection opened before is closed and the way out is torn down;
    // it is opened again (the gateway's ports forwarded into the worker, its names, resolver
    // and apt pointed at them) only when the phase's allowlist allows anything, or the job is
    // a network audit. Otherwise the worker's resolver points at its card, where a question
    // is seen (gateway/nic_watch.hpp) and goes nowhere.
    void enter_phase(policy::Phase phase);

    // A shell prefix that sets the worker's clock to this side's, for a worker whose clock
    // counts instructions (it falls behind while the guest is busy); empty otherwise.
    std::string clock_reset() const;

    // "kvm" or "tcg": what the worker runs with.
    const std::string& accel() const { return accel_; }

    // One look by the watchdog now, on this thread (before an export: a limit crossed since
    // its last look is found first).
    void look_now();

    // The worker's CPU seconds now (libvirt); nullopt once it is off.
    std::optional<double> cpu_seconds() const;
    // What the worker wrote to its overlay, as the host sees it.
    std::uint64_t overlay_bytes() const;

    // Moves the worker's writes to a new overlay while it runs (vm::Machine::split_disk);
    // returns the old one, which nothing writes to any more.
    std::filesystem::path split_disk();

    // The worker's VM (its exchange disk carries the workspace's tar streams).
    vm::Machine& machine() { return *machine_; }

    // Keeps the worker running after this object goes away, with its access file for
    // `contractor shell`; returns its name.
    std::string keep_for_debugging();

private:
    // Points the worker's resolver, /etc/hosts and apt at the gateway and forwards its ports.
    void open_gateway_tunnel(policy::Phase phase);
    // Undoes open_gateway_tunnel's resolver, names and apt setting in the worker.
    void point_resolver_at_card();
    // Writes the worker's client key and a known_hosts file holding only its pinned host key
    // into `folder` (0600), for OpenSSH-based tools (the gateway tunnel).
    void write_ssh_credentials(const std::filesystem::path& folder) const;

    const protocol::Job& job_;
    limits::Budget& budget_;
    Outbox& outbox_;
    std::string accel_ = "tcg";
    bool instruction_clock_ = false;   // the worker's clock counts instructions (nested TCG)
    bool resolver_at_gateway_ = false; // a phase pointed the worker's resolver at the gateway

    // Destroyed in reverse order: see the class comment.
    std::unique_ptr<virt::Connection> libvirt_;
    std::unique_ptr<gateway::Gateway> gateway_;
    std::unique_ptr<vm::Machine> machine_;
    std::unique_ptr<MachineProbe> probe_;
    std::unique_ptr<connection::Chain> chain_;
    std::unique_ptr<proc::BackgroundProcess> gateway_tunnel_;
    std::unique_ptr<Watchdog> watchdog_;
    std::unique_ptr<gateway::NicWatch> nic_watch_;
};

} // namespace contractor::manager

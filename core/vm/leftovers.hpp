#pragma once

#include "virt/libvirt.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace contractor::vm {

// Whether the process that created VM `name` ("contractor-worker-PID-RANDOM") is still alive:
// its VM is in use and must be left alone. For run folders without a lease (vm/lease.hpp).
bool owner_alive(const std::string& name);

// Which VMs count as left over:
//  - orphaned: a job's worker whose owning process is gone (a killed CLI or agent); kept
//    workers stay. Checked at the start of every job, so the next build cleans up.
//  - orphaned_and_kept: those, and workers kept for debugging (`contractor gc`).
//  - not_running: right after the machine holding them booted (the manager VM), every one
//    that is not running: no build can own a stopped worker, and process ids of the last
//    boot mean nothing now.
enum class Leftovers { orphaned, orphaned_and_kept, not_running };

// Destroys and undefines every contractor VM that is left over and deletes its run folder
// under `runs_directory`. Returns what it removed, one line each.
std::vector<std::string> remove_leftovers(virt::Connection& connection,
                                          const std::filesystem::path& runs_directory,
                                          Leftovers rule);

// A contractor worker VM and who holds it, for `contractor manager status`.
struct WorkerInfo {
    std::string name;
    bool running = false;
    std::optional<double> cpu_seconds;
    std::string lease; // "build", "kept", "ready", or "none"
};

// Every contractor worker VM the connection knows, with its lease from `runs_directory`.
std::vector<WorkerInfo> list_workers(virt::Connection& connection,
                                     const std::filesystem::path& runs_directory);

} // namespace contractor::vm

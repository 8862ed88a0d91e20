#pragma once

#include <filesystem>
#include <optional>
#include <string_view>
#include <sys/types.h>

// Who a worker VM belongs to: a lease file in its run folder, written by the process that
// booted it. `contractor gc` and the start of every job read it to tell a worker in use from
// one a killed process left behind. Step 8's ready workers and step 9's CI executor add kinds.
namespace contractor::vm {

enum class LeaseKind {
    build, // a job's worker: in use while its owner lives
    kept,  // kept for debugging (--keep-worker): stays until `contractor gc`
    ready, // a ready worker, idle until a build claims it: held by its reaper, which stops it
           // when its idle time is up
};

std::string_view to_string(LeaseKind kind);

struct Lease {
    LeaseKind kind = LeaseKind::build;
    pid_t owner = 0;
    // The owner's start time (clock ticks after boot, /proc/PID/stat field 22): a reused pid
    // is not the owner.
    unsigned long long owner_start = 0;
};

// A lease of `kind` held by this process.
Lease lease_for_this_process(LeaseKind kind);
// Writes `lease` into `run_directory` (replacing the file whole: a reader never sees half).
void write_lease(const std::filesystem::path& run_directory, const Lease& lease);
// The lease in `run_directory`; nullopt when there is none or it cannot be read.
std::optional<Lease> read_lease(const std::filesystem::path& run_directory);
// Whether the process that holds `lease` still runs (the same process, not a reused pid).
bool holder_alive(const Lease& lease);
// The start time of process `pid`, or nullopt when it does not exist.
std::optional<unsigned long long> process_start(pid_t pid);

} // namespace contractor::vm

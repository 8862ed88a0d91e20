#pragma once

#include "manager-agent/outbox.hpp"

#include <cstdint>
#include <filesystem>

// How many workers build at once on one side (the host in the direct topology, the manager VM
// in the nested one): config `max-workers`. A build holds one of that many slot files locked
// (flock) from before its boot until its worker is gone; a build that finds none free waits,
// saying so, in a queue of its own kind. The kernel releases the lock of a process that dies
// (kill -9 included), so a slot is never lost. Ready workers (ready_pool.hpp) hold no slot:
// they are idle, and the build that takes one holds a slot for it.
namespace contractor::manager {

class WorkerSlot {
public:
    // Waits until one of `count` slots in `folder` is free and takes it. Says "waiting for a
    // worker slot" on `outbox` once when it has to wait; throws Interrupted when the build is
    // cancelled meanwhile.
    WorkerSlot(const std::filesystem::path& folder, std::uint64_t count, Outbox& outbox);
    ~WorkerSlot();
    WorkerSlot(const WorkerSlot&) = delete;
    WorkerSlot& operator=(const WorkerSlot&) = delete;

    // Which slot this is (0-based).
    std::uint64_t index() const { return index_; }

private:
    int fd_ = -1;
    std::uint64_t index_ = 0;
};

} // namespace contractor::manager

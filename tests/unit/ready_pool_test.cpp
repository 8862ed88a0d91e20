// Tests for manager-agent/ready_pool.hpp and worker_slots.hpp: claiming a ready worker (the
// rename that hands it to one build only) and the slots that bound builds at once.
#include "manager-agent/outbox.hpp"
#include "manager-agent/ready_pool.hpp"
#include "manager-agent/worker_slots.hpp"
#include "temporary_directory.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "vm/lease.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <thread>
#include <unistd.h>

using namespace contractor;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

// A run folder as a keeper leaves it: the handover record, its key, a ready lease.
fs::path ready_folder(const TemporaryDirectory& runs, const std::string& name,
                      const std::string& key) {
    const fs::path run = runs.path() / name;
    runs.write(name + "/" + manager::ready_record_file, "{}");
    runs.write(name + "/ready.key", key + "\n");
    vm::write_lease(run, vm::lease_for_this_process(vm::LeaseKind::ready));
    return run;
}

} // namespace

TEST_CASE("a ready worker goes to one build only, and only for its key", "[ready-pool]") {
    const TemporaryDirectory runs;
    const fs::path run = ready_folder(runs, "contractor-worker-1-aaaaaa", "key-one");
    CHECK_FALSE(manager::claim_ready_worker(runs.path(), "key-two"));
    const auto claimed = manager::claim_ready_worker(runs.path(), "key-one");
    REQUIRE(claimed);
    CHECK(*claimed == run);
    // The record moved: the keeper sees the claim, and nobody else can claim it again.
    CHECK(fs::exists(run / manager::claimed_record_file));
    CHECK_FALSE(fs::exists(run / manager::ready_record_file));
    CHECK_FALSE(manager::claim_ready_worker(runs.path(), "key-one"));
    // From the claim on, the lease is the claiming build's.
    const auto lease = vm::read_lease(run);
    REQUIRE(lease);
    CHECK(lease->kind == vm::LeaseKind::build);
    CHECK(lease->owner == getpid());
}

TEST_CASE("of builds racing for one ready worker, exactly one gets it", "[ready-pool]") {
    const TemporaryDirectory runs;
    ready_folder(runs, "contractor-worker-1-bbbbbb", "key");
    std::atomic<int> winners{0};
    std::vector<std::thread> builds;
    for (int i = 0; i < 8; ++i) {
        builds.emplace_back([&] {
            if (manager::claim_ready_worker(runs.path(), "key")) {
                ++winners;
            }
        });
    }
    for (auto& build : builds) {
        build.join();
    }
    CHECK(winners == 1);
}

TEST_CASE("max-workers slots: a build waits while every slot is held", "[slots]") {
    const TemporaryDirectory folder;
    const int null = ::open("/dev/null", O_WRONLY);
    manager::Outbox outbox(null);
    auto first = std::make_unique<manager::WorkerSlot>(folder.path(), 1, outbox);
    CHECK(first->index() == 0);
    std::atomic<bool> got{false};
    std::thread second([&] {
        const manager::WorkerSlot slot(folder.path(), 1, outbox);
        got = true;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    CHECK_FALSE(got);
    first.reset(); // the first build's worker is gone
    second.join();
    CHECK(got);
    // Two slots: two at once.
    const manager::WorkerSlot a(folder.path(), 2, outbox);
    const manager::WorkerSlot b(folder.path(), 2, outbox);
    CHECK(a.index() != b.index());
    ::close(null);
}

TEST_CASE("a build waiting for a slot ends when it is cancelled", "[slots]") {
    const TemporaryDirectory folder;
    const int null = ::open("/dev/null", O_WRONLY);
    manager::Outbox outbox(null);
    const manager::WorkerSlot held(folder.path(), 1, outbox);
    util::request_cancel(SIGTERM);
    CHECK_THROWS_AS(manager::WorkerSlot(folder.path(), 1, outbox), Interrupted);
    util::clear_cancel();
    ::close(null);
}

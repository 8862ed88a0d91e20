#include "temporary_directory.hpp"
#include "vm/lease.hpp"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

using namespace contractor;
using contractor::test::TemporaryDirectory;

TEST_CASE("a lease names its holder and survives a round trip", "[lease]") {
    TemporaryDirectory scratch;
    REQUIRE_FALSE(vm::read_lease(scratch.path()));
    vm::write_lease(scratch.path(), vm::lease_for_this_process(vm::LeaseKind::kept));
    const auto lease = vm::read_lease(scratch.path());
    REQUIRE(lease);
    REQUIRE(lease->kind == vm::LeaseKind::kept);
    REQUIRE(lease->owner == getpid());
    REQUIRE(vm::holder_alive(*lease));
}

TEST_CASE("a lease whose holder is gone, or whose pid was reused, is not alive", "[lease]") {
    const pid_t child = fork();
    if (child == 0) {
        _exit(0);
    }
    REQUIRE(child > 0);
    const auto start = vm::process_start(child);
    int status = 0;
    waitpid(child, &status, 0);
    REQUIRE_FALSE(vm::holder_alive({vm::LeaseKind::build, child, start.value_or(1)}));
    // This process, with another start time: a reused pid.
    auto reused = vm::lease_for_this_process(vm::LeaseKind::build);
    reused.owner_start += 1;
    REQUIRE_FALSE(vm::holder_alive(reused));
}

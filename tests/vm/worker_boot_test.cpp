// Boots the worker image for real (QEMU under libvirt qemu:///session) and checks the
// per-boot credentials: the fresh client key logs in, any other key is refused, a host that
// shows any key but the pinned one is refused, and nothing is left behind.
#include "image/cache.hpp"
#include "ssh/keys.hpp"
#include "ssh/session.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"
#include "worker_image.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <iostream>

namespace fs = std::filesystem;
using namespace contractor;

namespace {

ssh::ConnectFailure failure_of(const ssh::Endpoint& endpoint) {
    try {
        ssh::Session session(endpoint, std::chrono::seconds(30));
    } catch (const ssh::ConnectError& error) {
        return error.failure();
    }
    return ssh::ConnectFailure::none;
}

} // namespace

TEST_CASE("a worker boots with per-boot credentials and refuses everything else", "[vm]") {
    const image::ImageCache cache(image::ImageCache::default_root());
    const fs::path image = test::worker_image();
    virt::Connection connection(virt::default_uri());
    vm::BootRequest request;
    request.image = image;
    request.accel = virt::choose_accel(virt::AccelRequest::automatic).accel;
    request.runs_directory = cache.root().parent_path() / "runs";
    auto machine = vm::Machine::boot(connection, cache, request);
    const std::string name = machine->name();
    REQUIRE(machine->boots_direct_kernel());
    machine->wait_until_ready(std::chrono::seconds(300));

    ssh::Session session(machine->endpoint(), std::chrono::seconds(30));
    const auto who = session.run("id -un; sudo -n true && echo sudo-ok");
    CHECK(who.exit_status == 0);
    CHECK(who.output == "worker\nsudo-ok\n");

    // The only host key is the one this boot brought, and it is the pinned one.
    const auto keys =
        session.run("ls /etc/ssh/ | grep ssh_host_; cat /etc/ssh/ssh_host_ed25519_key.pub");
    CHECK(keys.output == "ssh_host_ed25519_key\nssh_host_ed25519_key.pub\n" +
                             machine->endpoint().pinned_host_key + "\n");

    auto wrong_client = machine->endpoint();
    wrong_client.private_key = ssh::generate_key_pair().private_key;
    CHECK(failure_of(wrong_client) == ssh::ConnectFailure::auth_denied);

    auto wrong_host = machine->endpoint();
    wrong_host.pinned_host_key = ssh::generate_key_pair().public_key;
    CHECK(failure_of(wrong_host) == ssh::ConnectFailure::host_key_mismatch);

    CHECK(failure_of(machine->endpoint()) == ssh::ConnectFailure::none);

    machine.reset();
    CHECK(connection.find(name) == nullptr);
    CHECK_FALSE(fs::exists(request.runs_directory / name));
}

// The connection chain's SSH hops on a real worker: commands with streamed input and separate
// stderr, files, and a second SSH hop reached through a tunnel opened by the first (the shape
// of host -> manager -> worker).
#include "connection/chain.hpp"
#include "image/cache.hpp"
#include "ssh/keys.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"
#include "worker_image.hpp"

#include <catch2/catch.hpp>

#include <thread>

using namespace contractor;
using namespace std::chrono_literals;

namespace {

std::string read_all(connection::ByteStream& stream) {
    std::string out;
    char buffer[65536];
    for (;;) {
        const auto count = stream.read(buffer, sizeof buffer, 60s);
        REQUIRE(count.has_value());
        if (*count == 0) {
            return out;
        }
        out.append(buffer, *count);
    }
}

} // namespace

TEST_CASE("SSH hops run commands, move files and tunnel to the next hop", "[vm]") {
    const image::ImageCache cache(image::ImageCache::default_root());
    virt::Connection connection(virt::default_uri());
    auto machine = test::boot_ready_worker(connection, cache);

    connection::Chain chain;
    chain.add_ssh(machine->endpoint(), 30s);
    auto& worker = chain.last();

    std::string errors;
    auto command = worker.start("cat; echo done >&2; exit 7",
                                [&errors](std::string_view chunk) { errors.append(chunk); });
    std::string data(2 << 20, '\0');
    for (std::size_t i = 0; i < data.size(); ++i) {
        data[i] = static_cast<char>(i * 13 + i / 4096);
    }
    std::thread writer([&] {
        command->write(data.data(), data.size());
        command->close_write();
    });
    const std::string echoed = read_all(*command);
    writer.join();
    CHECK(echoed == data);
    CHECK(command->wait() == 7);
    CHECK(errors == "done\n");

    worker.write_file("/tmp/contractor file", "over ssh\n", 0600);
    CHECK(worker.read_file("/tmp/contractor file") == "over ssh\n");
    std::string output;
    CHECK(worker.run("stat -c %a '/tmp/contractor file'", output) == 0);
    CHECK(output == "600\n");

    // The worker's own sshd, reached through a tunnel from the first hop: the same pinned key.
    auto inner = machine->endpoint();
    inner.host = "127.0.0.1";
    inner.port = 22;
    chain.add_ssh(inner, 30s);
    CHECK(chain.size() == 3);
    output.clear();
    CHECK(chain.last().run("echo through the tunnel; id -un", output) == 0);
    CHECK(output == "through the tunnel\nworker\n");
    CHECK(chain.describe().find("(tunnelled)") != std::string::npos);

    // A hop whose key is not the pinned one is refused, through a tunnel too.
    connection::Chain wrong;
    wrong.add_ssh(machine->endpoint(), 30s);
    auto impostor = inner;
    impostor.pinned_host_key = ssh::generate_key_pair().public_key;
    CHECK_THROWS(wrong.add_ssh(impostor, 30s));
}

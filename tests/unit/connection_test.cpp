// The local hop and the chain's shared operations (run, read_file, write_file, tunnels), on
// real processes and a real loopback socket.
#include "connection/chain.hpp"
#include "connection/local_hop.hpp"
#include "temporary_directory.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace contractor;
using namespace std::chrono_literals;

namespace {

// Everything a stream delivers until its end.
std::string read_all(connection::ByteStream& stream) {
    std::string out;
    char buffer[4096];
    for (;;) {
        const auto count = stream.read(buffer, sizeof buffer, 10s);
        REQUIRE(count.has_value());
        if (*count == 0) {
            return out;
        }
        out.append(buffer, *count);
    }
}

} // namespace

TEST_CASE("a local hop runs commands and keeps stdout and stderr apart", "[connection]") {
    connection::LocalHop hop;
    std::string errors;
    auto command = hop.start("echo out; echo err >&2; exit 3",
                             [&errors](std::string_view chunk) { errors.append(chunk); });
    command->close_write();
    CHECK(read_all(*command) == "out\n");
    CHECK(command->wait() == 3);
    CHECK(errors == "err\n");
}

TEST_CASE("a local hop streams stdin to a command and back", "[connection]") {
    connection::LocalHop hop;
    auto command = hop.start("cat");
    const std::string data(3 << 20, 'x'); // more than a pipe holds: reading must interleave
    std::thread writer([&] {
        command->write(data.data(), data.size());
        command->close_write();
    });
    const std::string echoed = read_all(*command);
    writer.join();
    CHECK(echoed.size() == data.size());
    CHECK(echoed == data);
    CHECK(command->wait() == 0);
}

TEST_CASE("read returns nullopt when a command is silent past the timeout", "[connection]") {
    connection::LocalHop hop;
    auto command = hop.start("sleep 5");
    char buffer[16];
    CHECK_FALSE(command->read(buffer, sizeof buffer, 100ms).has_value());
    command->terminate();
    CHECK(command->wait() != 0);
}

TEST_CASE("write_file and read_file round-trip through a hop", "[connection]") {
    test::TemporaryDirectory directory;
    connection::Chain chain;
    const std::string path = (directory.path() / "it's a file").string();
    chain.last().write_file(path, "line one\nline two\n", 0640);
    CHECK(chain.last().read_file(path) == "line one\nline two\n");
    CHECK((std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
           std::filesystem::perms::group_read));
    CHECK_THROWS_AS(chain.last().read_file((directory.path() / "missing").string()),
                    InfrastructureError);
    CHECK(chain.describe() == "the local host");
}

TEST_CASE("a local hop's tunnel is a TCP connection", "[connection]") {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    std::thread server([listener] {
        const int client = ::accept(listener, nullptr, nullptr);
        char buffer[64];
        const ssize_t count = ::read(client, buffer, sizeof buffer);
        const std::string reply = "echo:" + std::string(buffer, static_cast<std::size_t>(count));
        (void)::write(client, reply.data(), reply.size());
        ::close(client);
    });
    connection::LocalHop hop;
    auto tunnel = hop.open_tunnel("127.0.0.1", ntohs(address.sin_port));
    tunnel->write("ping", 4);
    CHECK(read_all(*tunnel) == "echo:ping");
    server.join();
    ::close(listener);
    CHECK_THROWS_AS(hop.open_tunnel("127.0.0.1", ntohs(address.sin_port)), InfrastructureError);
}

TEST_CASE("run and read_file collect a bounded amount from a flooding command", "[connection]") {
    connection::LocalHop hop;
    std::string output;
    // Endless stdout: the command is stopped at the limit, not collected without end.
    CHECK_THROWS_AS(hop.run("yes", output), InfrastructureError);
    CHECK(output.size() <= connection::Hop::output_limit);
    // A flood on stderr is cut at the limit; the command still finishes with its status.
    output.clear();
    CHECK(hop.run("head -c 20000000 /dev/zero >&2; exit 3", output) == 3);
    CHECK(output.size() == connection::Hop::output_limit);
    CHECK_THROWS_AS(hop.read_file("/dev/zero"), InfrastructureError);
}

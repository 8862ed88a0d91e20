// Frames and the job message, over a real socket pair.
#include "protocol/frames.hpp"
#include "protocol/job.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace contractor;
using namespace std::chrono_literals;

namespace {

// Two connected ends; closed on destruction.
struct SocketPair {
    int fds[2]{-1, -1};
    SocketPair() { REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0); }
    ~SocketPair() {
        for (int fd : fds) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
};

} // namespace

TEST_CASE("frames carry a JSON header and raw bytes", "[protocol]") {
    SocketPair pair;
    connection::FdStream left(pair.fds[0], pair.fds[0]);
    connection::FdStream right(pair.fds[1], pair.fds[1]);
    protocol::FrameWriter writer(left);
    protocol::FrameReader reader(right);
    std::string binary(200000, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i) {
        binary[i] = static_cast<char>(i * 7);
    }
    std::thread sender([&] {
        writer.send({{"type", "status"}, {"text", "booting \xe2\x9c\x93"}});
        writer.send({{"type", "data"}}, binary);
        writer.send({{"type", "data-end"}});
    });
    const auto first = reader.next(5s);
    REQUIRE(first);
    CHECK(first->type() == "status");
    CHECK(first->header["text"] == "booting \xe2\x9c\x93");
    CHECK(first->payload.empty());
    const auto second = reader.next(5s);
    REQUIRE(second);
    CHECK(second->type() == "data");
    CHECK(second->payload == binary);
    const auto third = reader.next(5s);
    REQUIRE(third);
    CHECK(third->type() == "data-end");
    sender.join();
    CHECK_FALSE(reader.next(50ms).has_value());
}

TEST_CASE("a frame split across reads is kept until it is whole", "[protocol]") {
    SocketPair pair;
    connection::FdStream right(pair.fds[1], pair.fds[1]);
    protocol::FrameReader reader(right);
    const std::string frame = "{\"type\":\"log\",\"size\":5}\nhello";
    REQUIRE(::write(pair.fds[0], frame.data(), 10) == 10);
    CHECK_FALSE(reader.next(50ms).has_value());
    REQUIRE(::write(pair.fds[0], frame.data() + 10, frame.size() - 10) ==
            static_cast<ssize_t>(frame.size() - 10));
    const auto whole = reader.next(5s);
    REQUIRE(whole);
    CHECK(whole->payload == "hello");
}

TEST_CASE("malformed frames and a vanished peer are protocol errors", "[protocol]") {
    for (const std::string bad :
         {"not json\n", "[1,2]\n", "{\"type\":3}\n", "{\"type\":\"data\",\"size\":-1}\n",
          "{\"type\":\"data\",\"size\":999999999999}\n"}) {
        SocketPair pair;
        connection::FdStream right(pair.fds[1], pair.fds[1]);
        protocol::FrameReader reader(right);
        REQUIRE(::write(pair.fds[0], bad.data(), bad.size()) == static_cast<ssize_t>(bad.size()));
        try {
            reader.next(5s);
            FAIL("accepted: " << bad);
        } catch (const protocol::ProtocolError& error) {
            CHECK_FALSE(error.peer_gone());
        }
    }
    SocketPair pair;
    connection::FdStream right(pair.fds[1], pair.fds[1]);
    protocol::FrameReader reader(right);
    ::close(pair.fds[0]);
    pair.fds[0] = -1;
    try {
        reader.next(5s);
        FAIL("no error at end of stream");
    } catch (const protocol::ProtocolError& error) {
        CHECK(error.peer_gone());
    }
}

TEST_CASE("a job survives the trip through JSON", "[protocol]") {
    protocol::Job job;
    job.image_source = protocol::ImageSource::cached;
    job.image = "/tmp/worker.img";
    job.build = "make\nmake check\n";
    job.install = {"make", "gcc"};
    job.ansible = nlohmann::ordered_json::parse(R"([{"hosts": "worker", "tasks": []}])");
    job.env = {{"CC", "gcc"}, {"A", "b c"}};
    job.limits.cpus = 2;
    job.limits.timeout = 60;
    job.limits.export_size = 1ULL << 40;
    job.network.provision = {
        {{"deb.debian.org", 80, policy::Protocol::http}, policy::Origin::builtin}};
    job.network.build = {{{"*.example.org", 443, policy::Protocol::https}, policy::Origin::spec}};
    job.accel = protocol::WorkerAccel::manager_decides;
    job.keep_worker = true;
    job.upstream_proxy = "http://127.0.0.1:3142";
    job.contractor_host_address = "10.0.2.2";
    job.on_violation = protocol::OnViolation::warn;
    const protocol::Job back =
        protocol::job_from_json(nlohmann::json::parse(protocol::job_to_json(job).dump()));
    CHECK(back.image == job.image);
    CHECK(back.build == job.build);
    CHECK(back.install == job.install);
    CHECK(back.ansible.dump() == job.ansible.dump());
    CHECK(back.env == job.env);
    CHECK(back.image_source == protocol::ImageSource::cached);
    CHECK(back.accel == protocol::WorkerAccel::manager_decides);
    CHECK(back.limits.cpus == 2);
    CHECK(back.limits.timeout == 60);
    CHECK(back.limits.export_size == 1ULL << 40);
    REQUIRE(back.network.build.size() == 1);
    CHECK(back.network.build[0].rule.host == "*.example.org");
    CHECK(back.network.build[0].origin == policy::Origin::spec);
    CHECK(back.network.provision[0].rule.protocol == policy::Protocol::http);
    CHECK(back.keep_worker);
    CHECK(back.upstream_proxy == job.upstream_proxy);
    CHECK(back.contractor_host_address == "10.0.2.2");
    CHECK(back.on_violation == protocol::OnViolation::warn);
    job.on_violation = protocol::OnViolation::audit;
    CHECK(protocol::job_from_json(nlohmann::json::parse(protocol::job_to_json(job).dump()))
              .on_violation == protocol::OnViolation::audit);
    CHECK_THROWS_AS(protocol::job_from_json(nlohmann::json{{"type", "job"}}),
                    protocol::ProtocolError);
}

TEST_CASE("a header with bytes that are not UTF-8 is sent with U+FFFD, never throws",
          "[protocol]") {
    SocketPair pair;
    connection::FdStream left(pair.fds[0], pair.fds[0]);
    connection::FdStream right(pair.fds[1], pair.fds[1]);
    protocol::FrameWriter writer(left);
    protocol::FrameReader reader(right);
    // A worker's file name or console line, as the manager passes it on.
    REQUIRE_NOTHROW(writer.send({{"type", "status"}, {"text", "name \xff\xe9t\xe9 \xe2\x9c"}}));
    const auto frame = reader.next(5s);
    REQUIRE(frame);
    CHECK(frame->header["text"] == "name \xef\xbf\xbd\xef\xbf\xbdt\xef\xbf\xbd \xef\xbf\xbd");
}

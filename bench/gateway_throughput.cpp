// bench/gateway_throughput: what the network gateway costs, next to a direct connection, in
// one run.
//
//   throughput: one connection carries N MiB (default 512) from a loopback HTTP server: direct,
//               through the gateway's CONNECT tunnel (https), its absolute-form GET (http) and
//               a tcp rule's endpoint. Variants alternate in rounds (default 5); the table shows
//               medians and the ratio gateway/direct (target >= 0.8).
//   latency:    connect + small request + 100-byte answer + close, 500 times per variant,
//               interleaved: median and p95, and the time the gateway adds per connection.
//
// Everything runs on this host's loopback, unpaced (network-rate 0), so the numbers are the
// gateway's own cost. Measured from a worker under TCG, the SSH forward in front of the gateway
// would dominate: it would mostly measure the worker's sshd.
#include "gateway/gateway.hpp"
#include "gateway/socket.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <iterator>
#include <netinet/in.h>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
#include <sys/time.h>
#include <thread>
#include <unistd.h>
#include <vector>

using namespace contractor;
using gateway::Fd;
using Clock = std::chrono::steady_clock;

namespace {

// A failed measurement: the bench stops rather than print a number from a broken run.
struct BenchError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The size of every read and of the server's writes.
constexpr std::size_t chunk_size = 256 * 1024;
// A head longer than this is not one of ours: the bench stops instead of buffering it.
constexpr std::size_t max_head = 16 * 1024;

// Every blocking call gives up after this, so a gateway that stalls ends the bench with an
// error instead of hanging it.
void set_io_timeouts(int fd) {
    const timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
}

Fd connect_to(std::uint16_t port) {
    Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in address{AF_INET, htons(port), {htonl(INADDR_LOOPBACK)}, {}};
    if (!fd.valid() ||
        ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        throw BenchError("cannot connect to 127.0.0.1:" + std::to_string(port) + ": " +
                         std::strerror(errno));
    }
    set_io_timeouts(fd.get());
    return fd;
}

void send_text(int fd, std::string_view text) {
    while (!text.empty()) {
        const ssize_t sent = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
        if (sent <= 0) {
            throw BenchError(std::string("send failed: ") + std::strerror(errno));
        }
        text.remove_prefix(static_cast<std::size_t>(sent));
    }
}

// Reads one HTTP head, up to its blank line; what was read past it goes to `rest`.
std::string read_head(int fd, std::string& rest) {
    std::string data;
    char chunk[4096];
    for (;;) {
        const std::size_t end = data.find("\r\n\r\n");
        if (end != std::string::npos) {
            rest = data.substr(end + 4);
            data.resize(end + 4);
            return data;
        }
        const ssize_t got = data.size() < max_head ? ::read(fd, chunk, sizeof chunk) : -1;
        if (got <= 0) {
            throw BenchError("no complete HTTP head, got: \"" + data.substr(0, 80) + "\"");
        }
        data.append(chunk, static_cast<std::size_t>(got));
    }
}

// An HTTP server on 127.0.0.1 that answers "GET /N" with N bytes (with Content-Length), then
// closes. One connection at a time, like every measurement here.
class BytesServer {
public:
    BytesServer() : listener_(gateway::listen_on_loopback(port_)), thread_([this] { serve(); }) {}
    ~BytesServer() {
        stop_ = true;
        thread_.join();
    }
    BytesServer(const BytesServer&) = delete;
    BytesServer& operator=(const BytesServer&) = delete;
    std::uint16_t port() const { return port_; }

private:
    void serve() {
        const std::string block(chunk_size, 'x');
        while (!stop_) {
            pollfd ready{listener_.get(), POLLIN, 0};
            // 20 ms: how long the destructor waits for this thread at most.
            if (::poll(&ready, 1, 20) <= 0) {
                continue;
            }
            const Fd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (client.valid()) {
                try {
                    answer(client.get(), block);
                } catch (const std::exception&) {
                    // The client sees the short answer and reports it.
                }
            }
        }
    }

    static void answer(int fd, const std::string& block) {
        set_io_timeouts(fd);
        std::string rest;
        const std::string head = read_head(fd, rest);
        if (!head.starts_with("GET /")) {
            throw BenchError("unexpected request");
        }
        std::uint64_t left = std::stoull(head.substr(5));
        send_text(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(left) +
                          "\r\nConnection: close\r\n\r\n");
        while (left > 0) {
            const std::size_t size = std::min<std::uint64_t>(left, block.size());
            send_text(fd, std::string_view(block).substr(0, size));
            left -= size;
        }
    }

    std::uint16_t port_ = 0;
    Fd listener_;
    std::atomic<bool> stop_{false};
    std::thread thread_; // last: it starts once everything it uses exists
};

// The ways to reach the server, in table order.
enum class Variant { direct, connect, get, tcp_rule };
constexpr Variant variants[] = {Variant::direct, Variant::connect, Variant::get, Variant::tcp_rule};
constexpr const char* variant_names[] = {"direct", "connect (https)", "get (http)", "tcp rule"};

// Fetches bytes from the server one of the ways, a whole connection per fetch.
class Client {
public:
    Client(std::uint16_t server_port, std::uint16_t gateway_port, std::uint16_t tcp_rule_port)
        : server_(server_port), gateway_(gateway_port), tcp_rule_(tcp_rule_port) {}

    // Connects, asks for `bytes`, reads them all and closes; returns the seconds that took.
    // Throws unless all the bytes came.
    double fetch(Variant variant, std::uint64_t bytes) {
        const auto start = Clock::now();
        const std::string server = "127.0.0.1:" + std::to_string(server_);
        const std::string path = "/" + std::to_string(bytes);
        const std::string origin_form = "GET " + path + " HTTP/1.1\r\nHost: " + server + "\r\n\r\n";
        Fd fd;
        std::string rest;
        switch (variant) {
        case Variant::direct:
        case Variant::tcp_rule:
            fd = connect_to(variant == Variant::direct ? server_ : tcp_rule_);
            send_text(fd.get(), origin_form);
            break;
        case Variant::connect:
            fd = connect_to(gateway_);
            send_text(fd.get(), "CONNECT " + server + " HTTP/1.1\r\nHost: " + server + "\r\n\r\n");
            // Like a TLS client, it sends nothing more until the tunnel is up.
            if (!read_head(fd.get(), rest).starts_with("HTTP/1.1 200 ")) {
                throw BenchError("the gateway refused CONNECT " + server);
            }
            send_text(fd.get(), origin_form);
            break;
        case Variant::get:
            fd = connect_to(gateway_);
            send_text(fd.get(),
                      "GET http://" + server + path + " HTTP/1.1\r\nHost: " + server + "\r\n\r\n");
            break;
        }
        const std::string head = read_head(fd.get(), rest);
        if (!head.starts_with("HTTP/1.1 200 ")) {
            throw BenchError("answer: " + head.substr(0, head.find('\r')));
        }
        std::uint64_t received = rest.size();
        while (received < bytes) {
            const ssize_t got = ::read(fd.get(), buffer_.data(),
                                       std::min<std::uint64_t>(buffer_.size(), bytes - received));
            if (got <= 0) {
                throw BenchError(std::string(variant_names[int(variant)]) +
                                 ": connection ended after " + std::to_string(received) + " of " +
                                 std::to_string(bytes) + " bytes");
            }
            received += static_cast<std::uint64_t>(got);
        }
        fd = Fd(); // closed before the clock stops
        return std::chrono::duration<double>(Clock::now() - start).count();
    }

private:
    std::uint16_t server_;
    std::uint16_t gateway_;
    std::uint16_t tcp_rule_;
    std::vector<char> buffer_ = std::vector<char>(chunk_size);
};

// The value below which `fraction` of `values` lie (nearest rank).
double percentile(std::vector<double> values, double fraction) {
    std::sort(values.begin(), values.end());
    const auto rank = static_cast<std::size_t>(std::ceil(fraction * double(values.size())));
    return values[std::clamp<std::size_t>(rank, 1, values.size()) - 1];
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    const std::size_t middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

struct Settings {
    std::uint64_t mib = 512;
    int runs = 5;
    int connections = 500;
};

Settings parse_arguments(int argc, char** argv) {
    Settings settings;
    for (int i = 1; i < argc; ++i) {
        const std::string option = argv[i];
        const long value = i + 1 < argc ? std::strtol(argv[i + 1], nullptr, 10) : 0;
        if ((option != "--mib" && option != "--runs" && option != "--connections") || value <= 0) {
            throw BenchError("usage: gateway_throughput [--mib N] [--runs N] [--connections N]");
        }
        ++i;
        if (option == "--mib") {
            settings.mib = static_cast<std::uint64_t>(value);
        } else {
            (option == "--runs" ? settings.runs : settings.connections) = static_cast<int>(value);
        }
    }
    return settings;
}

} // namespace

int main(int argc, char** argv) {
    try {
        const Settings settings = parse_arguments(argc, argv);
        const BytesServer server;
        // The server is on the loopback, which the gateway reaches only when the user's config
        // names it: hence Origin::config.
        policy::EffectivePolicy policy;
        for (const auto protocol :
             {policy::Protocol::http, policy::Protocol::https, policy::Protocol::tcp}) {
            policy.provision.push_back(
                {{"127.0.0.1", server.port(), protocol}, policy::Origin::config});
        }
        const gateway::Gateway gateway(policy, {}); // rate 0: unpaced
        if (gateway.tcp_endpoints().size() != 1) {
            throw BenchError("the gateway did not open the tcp rule's endpoint");
        }
        Client client(server.port(), gateway.port(), gateway.tcp_endpoints()[0].local_port);

        std::vector<double> mib_per_second[std::size(variants)];
        for (int round = 0; round < settings.runs; ++round) {
            // Alternating, so that a noisy neighbour slows every variant alike.
            std::cerr << "bench: round " << round + 1 << ":";
            for (const Variant variant : variants) {
                const double seconds = client.fetch(variant, settings.mib << 20);
                mib_per_second[int(variant)].push_back(double(settings.mib) / seconds);
                std::cerr << " " << variant_names[int(variant)] << " "
                          << int(mib_per_second[int(variant)].back()) << " MiB/s;";
            }
            std::cerr << "\n";
        }
        constexpr Variant latency_variants[] = {Variant::direct, Variant::connect, Variant::get};
        std::vector<double> micros[std::size(variants)];
        for (int i = 0; i < settings.connections; ++i) {
            for (const Variant variant : latency_variants) {
                micros[int(variant)].push_back(client.fetch(variant, 100) * 1e6);
            }
        }

        const double direct_rate = median(mib_per_second[int(Variant::direct)]);
        std::printf("%-18s %8s   %s\n", "variant", "MiB/s", "ratio (target >= 0.8)");
        for (const Variant variant : variants) {
            const double rate = median(mib_per_second[int(variant)]);
            std::printf("%-18s %8.0f", variant_names[int(variant)], rate);
            if (variant != Variant::direct) {
                std::printf("   %.2f", rate / direct_rate);
            }
            std::printf("\n");
        }
        const double direct_latency = median(micros[int(Variant::direct)]);
        std::printf("%-18s %8s   %8s   %s\n", "latency", "median", "p95", "added");
        for (const Variant variant : latency_variants) {
            const auto& values = micros[int(variant)];
            std::printf("%-18s %5.0f us   %5.0f us", variant_names[int(variant)], median(values),
                        percentile(values, 0.95));
            if (variant != Variant::direct) {
                std::printf("   %+.2f ms", (median(values) - direct_latency) / 1000);
            }
            std::printf("\n");
        }
        return 0;
    } catch (const std::exception& error) {
        std::cerr << "bench: error: " << error.what() << "\n";
        return 1;
    }
}

#include "gateway/gateway.hpp"

#include "gateway/proxy_connection.hpp"
#include "gateway/socket.hpp"
#include "util/error.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <poll.h>
#include <sys/socket.h>
#include <system_error>
#include <thread>

namespace contractor::gateway {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool same_ipv6_address(std::string_view a, std::string_view b) {
    in6_addr first{};
    in6_addr second{};
    return ::inet_pton(AF_INET6, std::string(a).c_str(), &first) == 1 &&
           ::inet_pton(AF_INET6, std::string(b).c_str(), &second) == 1 &&
           std::memcmp(&first, &second, sizeof first) == 0;
}

bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern.starts_with("*.")) {
        const std::string_view suffix = pattern.substr(1); // ".example.org"
        return host.size() > suffix.size() &&
               iequals(host.substr(host.size() - suffix.size()), suffix);
    }
    return iequals(pattern, host) || same_ipv6_address(pattern, host);
}

} // namespace

bool rule_allows(const policy::NetworkRule& rule, std::string_view host, std::uint16_t port,
                 policy::Protocol protocol) {
    return rule.protocol == protocol && rule.port == port && host_matches(rule.host, host);
}

// A build that opens connections without end must not exhaust the manager's threads; apt and
// pip use a handful at a time. Connections beyond this are closed at once.
constexpr std::size_t max_connections = 256;

// A client connection's thread; `finished` tells the acceptor it may be joined.
struct Connection {
    std::thread thread;
    std::atomic<bool> finished{false};
};

struct Gateway::State {
    Fd stop_event = make_stop_event();
    std::uint16_t port = 0;
    Fd listener = listen_on_loopback(port);
    ConnectionEnvironment environment;

    mutable std::mutex mutex; // guards rules, phase and attempts
    std::vector<policy::EffectiveRule> rules;
    std::string phase;
    std::vector<Attempt> attempts;
    std::atomic<std::uint64_t> bytes_up{0};
    std::atomic<std::uint64_t> bytes_down{0};

    std::thread acceptor;
    std::list<Connection> connections; // touched by the acceptor only, then by the destructor

    Decision decide(const Endpoint& destination, policy::Protocol protocol) {
        const std::lock_guard lock(mutex);
        const bool allowed =
            std::any_of(rules.begin(), rules.end(), [&](const policy::EffectiveRule& rule) {
                return rule_allows(rule.rule, destination.host, destination.port, protocol);
            });
        attempts.push_back({destination.host, destination.port, protocol, allowed, phase});
        return {allowed, phase};
    }

    void join_finished_connections() {
        for (auto it = connections.begin(); it != connections.end();) {
            if (it->finished.load()) {
                it->thread.join();
                it = connections.erase(it);
            } else {
                ++it;
            }
        }
    }

    void start_connection(Fd client) {
        Connection& connection = connections.emplace_back();
        try {
            connection.thread =
                std::thread([this, &connection, client = std::move(client)]() mutable {
                    serve_connection(std::move(client), environment);
                    connection.finished.store(true);
                });
        } catch (const std::system_error&) {
            connections.pop_back(); // no thread: the client is closed and may retry
        }
    }

    void accept_loop() {
        while (true) {
            pollfd fds[2] = {{listener.get(), POLLIN, 0}, {stop_event.get(), POLLIN, 0}};
            // Waking once a second also joins threads that finished while no client came.
            if (::poll(fds, 2, 1000) < 0 && errno != EINTR) {
                return;
            }
            if (fds[1].revents != 0) {
                return;
            }
            join_finished_connections();
            if (fds[0].revents == 0) {
                continue;
            }
            Fd client(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!client.valid()) {
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    // Out of descriptors: the pending connection stays queued and poll would
                    // wake at once, so wait a little for connections to end (or to stop).
                    wait_for(-1, 0, stop_event.get(), std::chrono::milliseconds(100));
                }
                continue;
            }
            if (connections.size() < max_connections) {
                start_connection(std::move(client));
            }
        }
    }
};

Gateway::Gateway(std::vector<policy::EffectiveRule> rules_for_phase, std::string phase,
                 GatewayOptions options)
    : state_(std::make_unique<State>()) {
    State& state = *state_;
    if (options.upstream_proxy) {
        state.environment.upstream_proxy = parse_proxy_url(*options.upstream_proxy);
        if (!state.environment.upstream_proxy) {
            throw UsageError("gateway: bad upstream proxy '" + *options.upstream_proxy + "'",
                             "write it as http://HOST:PORT");
        }
    }
    state.environment.stop_fd = state.stop_event.get();
    state.environment.hosts_override = std::move(options.hosts_override);
    state.environment.decide = [&state](const Endpoint& destination, policy::Protocol protocol) {
        return state.decide(destination, protocol);
    };
    state.environment.bytes_up = &state.bytes_up;
    state.environment.bytes_down = &state.bytes_down;
    state.rules = std::move(rules_for_phase);
    state.phase = std::move(phase);
    state.acceptor = std::thread([&state] { state.accept_loop(); });
}

Gateway::~Gateway() {
    fire_stop_event(state_->stop_event.get());
    state_->acceptor.join();
    for (auto& connection : state_->connections) {
        connection.thread.join();
    }
}

std::uint16_t Gateway::port() const {
    return state_->port;
}

void Gateway::set_rules(std::vector<policy::EffectiveRule> rules, std::string phase) {
    const std::lock_guard lock(state_->mutex);
    state_->rules = std::move(rules);
    state_->phase = std::move(phase);
}

GatewayUsage Gateway::usage() const {
    const std::lock_guard lock(state_->mutex);
    return {state_->bytes_up.load(), state_->bytes_down.load(), state_->attempts};
}

} // namespace contractor::gateway

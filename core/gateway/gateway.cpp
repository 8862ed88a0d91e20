#include "gateway/gateway.hpp"

#include "gateway/address_policy.hpp"
#include "gateway/dns_responder.hpp"
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
#include <map>
#include <mutex>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <system_error>
#include <thread>
#include <tuple>

namespace contractor::gateway {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

bool host_matches(std::string_view pattern, std::string_view host) {
    if (pattern.starts_with("*.")) {
        const std::string_view suffix = pattern.substr(1); // ".example.org"
        return host.size() > suffix.size() &&
               iequals(host.substr(host.size() - suffix.size()), suffix);
    }
    if (iequals(pattern, host)) {
        return true;
    }
    const auto a = canonical_ip(pattern);
    return a && a == canonical_ip(host);
}

// A build that opens connections without end must not exhaust the manager's threads; apt and
// pip use a handful at a time. Connections beyond this are closed at once.
constexpr std::size_t max_connections = 256;

// A DNS client that stays silent this long is closed (glibc asks and waits a few seconds).
constexpr std::chrono::seconds dns_idle_timeout(10);

// Where the worker reaches the proxy and the names allowed for http and https: its own
// loopback, which the SSH forward carries to the gateway.
constexpr std::array<std::uint8_t, 4> worker_loopback = {127, 0, 0, 1};

// The addresses tcp rules get in the worker: 127.77.0.1, .2, ... one per host name.
std::string tcp_worker_address(std::size_t index) {
    return "127.77." + std::to_string((index + 1) / 256) + "." + std::to_string((index + 1) % 256);
}

std::array<std::uint8_t, 4> ipv4_bytes(const std::string& text) {
    in_addr address{};
    ::inet_pton(AF_INET, text.c_str(), &address);
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), &address, 4);
    return bytes;
}

// The counts of one kind of attempt; the atomics are fed by its connections' relays.
struct TallyCounters {
    std::uint64_t count = 0;
    std::atomic<std::uint64_t> up{0};
    std::atomic<std::uint64_t> down{0};
};

// What a listener leads to.
struct Listener {
    enum class Kind { proxy, dns, tcp } kind;
    Fd fd;
    std::size_t endpoint = 0; // for tcp: index into tcp_endpoints
};

// A client connection's thread, and the event that ends it.
struct Connection {
    Fd stop_event = make_stop_event();
    std::thread thread;
    std::atomic<bool> finished{false};
};

} // namespace

bool Attempt::operator<(const Attempt& other) const {
    return std::tie(host, port, protocol, phase, allowed, refusal) <
           std::tie(other.host, other.port, other.protocol, other.phase, other.allowed,
                    other.refusal);
}

bool rule_allows(const policy::NetworkRule& rule, std::string_view host, std::uint16_t port,
                 policy::Protocol protocol) {
    return rule.protocol == protocol && rule.port == port && host_matches(rule.host, host);
}

struct Gateway::State {
    Fd stop_event = make_stop_event();
    const policy::EffectivePolicy policy;
    GatewayOptions options;
    std::optional<Endpoint> upstream_proxy;
    std::set<std::string> trusted; // IP literals the user's config names
    std::set<std::string> own = own_addresses();
    TokenBucket bucket_up;
    TokenBucket bucket_down;
    std::atomic<std::uint64_t> bytes_up{0};
    std::atomic<std::uint64_t> bytes_down{0};

    std::uint16_t proxy_port = 0;
    std::uint16_t dns_port = 0;
    std::vector<TcpEndpoint> tcp_endpoints;
    std::vector<Listener> listeners;

    mutable std::mutex mutex; // guards phase, the tallies and the names
    policy::Phase phase = policy::Phase::provision;
    std::map<Attempt, TallyCounters> tallies;
    TallyCounters unlisted; // attempts to destinations past max_listed_attempts distinct ones
    std::uint64_t allowed = 0;
    std::uint64_t blocked = 0;
    std::map<std::pair<std::string, std::string>, NameTally> names;
    std::uint64_t names_unlisted = 0;

    std::mutex connections_mutex; // guards connections (the acceptor and begin_phase)
    std::list<Connection> connections;
    std::thread acceptor;

    State(policy::EffectivePolicy policy_in, GatewayOptions options_in)
        : policy(std::move(policy_in)), options(std::move(options_in)), bucket_up(options.rate),
          bucket_down(options.rate) {}

    // Records one attempt; the counters its connection feeds.
    TallyCounters& record(const Attempt& attempt) {
        (attempt.allowed ? allowed : blocked) += 1;
        auto found = tallies.find(attempt);
        if (found == tallies.end()) {
            if (tallies.size() >= max_listed_attempts) {
                ++unlisted.count;
                return unlisted;
            }
            found = tallies.try_emplace(attempt).first;
        }
        ++found->second.count;
        return found->second;
    }

    Admission admit(const Endpoint& destination, policy::Protocol protocol) {
        Attempt attempt{destination.host, destination.port, protocol, {}, false, {}};
        {
            const std::lock_guard lock(mutex);
            attempt.phase = std::string(policy::to_string(phase));
            const auto& rules = policy.phase(phase);
            attempt.allowed =
                std::any_of(rules.begin(), rules.end(), [&](const policy::EffectiveRule& rule) {
                    return rule_allows(rule.rule, destination.host, destination.port, protocol);
                });
        }
        Admission admission;
        if (!attempt.allowed) {
            attempt.refusal = "not in the " + attempt.phase + " allowlist";
        } else {
            resolve(destination, protocol, attempt, admission);
        }
        admission.allowed = attempt.allowed;
        admission.refusal = attempt.refusal;
        admission.phase = attempt.phase;
        TallyCounters* counters = nullptr;
        {
            const std::lock_guard lock(mutex);
            counters = &record(attempt);
        }
        admission.up = {&bytes_up, &counters->up, &bucket_up,
                        options.charge_transfer ? &options.charge_transfer : nullptr};
        admission.down = {&bytes_down, &counters->down, &bucket_down,
                          options.charge_transfer ? &options.charge_transfer : nullptr};
        if (!attempt.allowed && options.on_refused) {
            options.on_refused(attempt);
        }
        return admission;
    }

    // The addresses to connect to for an allowed destination; refuses internal ones.
    void resolve(const Endpoint& destination, policy::Protocol protocol, Attempt& attempt,
                 Admission& admission) {
        if (destination.host == policy::contractor_host) {
            if (options.contractor_host_address.empty()) {
                admission.unreachable = "host.contractor.internal leads nowhere here";
                return;
            }
            // contractor's own mapping, never looked up: the loopback of the machine that
            // runs contractor, which only the user's config lets a build reach.
            admission.addresses =
                resolve_checked(options.contractor_host_address, destination.port, {}, {}, true)
                    .addresses;
            return;
        }
        CheckedAddresses checked =
            resolve_checked(destination.host, destination.port, trusted, own);
        const bool via_proxy = upstream_proxy && protocol != policy::Protocol::tcp;
        if (!checked.resolved && !via_proxy) {
            admission.unreachable = checked.refusal;
            return;
        }
        if (checked.resolved && checked.addresses.empty()) {
            attempt.allowed = false;
            attempt.refusal = checked.refusal;
            return;
        }
        if (via_proxy) {
            // The proxy resolves the name itself; what it resolves to here was checked above
            // when it resolves here at all.
            const CheckedAddresses proxy =
                resolve_checked(upstream_proxy->host, upstream_proxy->port, {}, {}, true);
            admission.addresses = proxy.addresses;
            admission.unreachable = proxy.refusal;
            return;
        }
        admission.addresses = std::move(checked.addresses);
    }

    // The DNS responder's answer for a name in the current phase: the worker loopback for
    // http and https names (the proxy is there), a tcp rule's own address, or nothing.
    std::optional<std::array<std::uint8_t, 4>> lookup(const DnsQuestion& question) {
        const std::lock_guard lock(mutex);
        for (const auto& endpoint : tcp_endpoints) {
            if (endpoint.phase == phase && iequals(endpoint.host, question.name)) {
                return ipv4_bytes(endpoint.worker_address);
            }
        }
        for (const auto& rule : policy.phase(phase)) {
            if (rule.rule.protocol != policy::Protocol::tcp &&
                host_matches(rule.rule.host, question.name) && !canonical_ip(rule.rule.host)) {
                return worker_loopback;
            }
        }
        return std::nullopt;
    }

    void record_name(const DnsQuestion& question, bool answered) {
        const std::lock_guard lock(mutex);
        const std::string phase_name(policy::to_string(phase));
        auto found = names.find({question.name, phase_name});
        if (found == names.end()) {
            if (names.size() >= max_listed_names) {
                ++names_unlisted;
                return;
            }
            found = names
                        .try_emplace({question.name, phase_name},
                                     NameTally{question.name, phase_name, answered, 0})
                        .first;
        }
        ++found->second.count;
    }

    void make_tcp_endpoints() {
        std::vector<std::string> hosts;
        for (const auto phase_value : {policy::Phase::provision, policy::Phase::build}) {
            for (const auto& rule : policy.phase(phase_value)) {
                if (rule.rule.protocol != policy::Protocol::tcp) {
                    continue;
                }
                auto index = std::find(hosts.begin(), hosts.end(), rule.rule.host);
                if (index == hosts.end()) {
                    hosts.push_back(rule.rule.host);
                    index = hosts.end() - 1;
                }
                TcpEndpoint endpoint{
                    rule.rule.host, rule.rule.port,
                    tcp_worker_address(static_cast<std::size_t>(index - hosts.begin())), 0,
                    phase_value};
                Listener listener{Listener::Kind::tcp, listen_on_loopback(endpoint.local_port),
                                  tcp_endpoints.size()};
                tcp_endpoints.push_back(std::move(endpoint));
                listeners.push_back(std::move(listener));
            }
        }
    }

    void join_finished_connections() {
        const std::lock_guard lock(connections_mutex);
        for (auto it = connections.begin(); it != connections.end();) {
            if (it->finished.load()) {
                it->thread.join();
                it = connections.erase(it);
            } else {
                ++it;
            }
        }
    }

    void serve(const Listener& listener, Fd client, int stop_fd) {
        ConnectionEnvironment environment;
        environment.stop_fd = stop_fd;
        environment.upstream_proxy = upstream_proxy;
        environment.admit = [this](const Endpoint& destination, policy::Protocol protocol) {
            return admit(destination, protocol);
        };
        switch (listener.kind) {
        case Listener::Kind::proxy:
            serve_proxy_connection(std::move(client), environment);
            break;
        case Listener::Kind::tcp: {
            const TcpEndpoint& endpoint = tcp_endpoints[listener.endpoint];
            serve_tcp_connection(std::move(client), Endpoint{endpoint.host, endpoint.port},
                                 environment);
            break;
        }
        case Listener::Kind::dns:
            serve_dns_connection(
                std::move(client), stop_fd,
                [this](const DnsQuestion& question) { return lookup(question); },
                [this](const DnsQuestion& question) {
                    record_name(question, lookup(question).has_value());
                },
                dns_idle_timeout);
            break;
        }
    }

    void start_connection(const Listener& listener, Fd client) {
        const std::lock_guard lock(connections_mutex);
        if (connections.size() >= max_connections) {
            return;
        }
        Connection& connection = connections.emplace_back();
        try {
            connection.thread =
                std::thread([this, &listener, &connection, client = std::move(client)]() mutable {
                    serve(listener, std::move(client), connection.stop_event.get());
                    connection.finished.store(true);
                });
        } catch (const std::system_error&) {
            connections.pop_back(); // no thread: the client is closed and may retry
        }
    }

    void accept_loop() {
        std::vector<pollfd> fds;
        while (true) {
            fds.clear();
            for (const auto& listener : listeners) {
                fds.push_back({listener.fd.get(), POLLIN, 0});
            }
            fds.push_back({stop_event.get(), POLLIN, 0});
            // Waking once a second also joins threads that finished while no client came.
            if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) {
                return;
            }
            if (fds.back().revents != 0) {
                return;
            }
            join_finished_connections();
            for (std::size_t i = 0; i < listeners.size(); ++i) {
                if (fds[i].revents == 0) {
                    continue;
                }
                Fd client(::accept4(listeners[i].fd.get(), nullptr, nullptr,
                                    SOCK_NONBLOCK | SOCK_CLOEXEC));
                if (!client.valid()) {
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        // Out of descriptors: the pending connection stays queued and poll
                        // would wake at once, so wait a little for connections to end.
                        wait_for(-1, 0, stop_event.get(), std::chrono::milliseconds(100));
                    }
                    continue;
                }
                start_connection(listeners[i], std::move(client));
            }
        }
    }

    void end_connections() {
        const std::lock_guard lock(connections_mutex);
        for (auto& connection : connections) {
            fire_stop_event(connection.stop_event.get());
        }
    }
};

Gateway::Gateway(policy::EffectivePolicy policy, GatewayOptions options)
    : state_(std::make_unique<State>(std::move(policy), std::move(options))) {
    State& state = *state_;
    if (state.options.upstream_proxy) {
        state.upstream_proxy = parse_proxy_url(*state.options.upstream_proxy);
        if (!state.upstream_proxy) {
            throw UsageError("gateway: bad upstream proxy '" + *state.options.upstream_proxy + "'",
                             "write it as http://HOST:PORT");
        }
    }
    // Only the user's config can open an internal address, by naming it (the built-in base
    // policy names none).
    for (const auto phase : {policy::Phase::provision, policy::Phase::build}) {
        for (const auto& rule : state.policy.phase(phase)) {
            if (rule.origin != policy::Origin::spec) {
                if (auto ip = canonical_ip(rule.rule.host)) {
                    state.trusted.insert(*ip);
                }
            }
        }
    }
    state.listeners.push_back({Listener::Kind::proxy, listen_on_loopback(state.proxy_port), 0});
    state.listeners.push_back({Listener::Kind::dns, listen_on_loopback(state.dns_port), 0});
    state.make_tcp_endpoints();
    state.acceptor = std::thread([&state] { state.accept_loop(); });
}

Gateway::~Gateway() {
    fire_stop_event(state_->stop_event.get());
    state_->acceptor.join();
    state_->end_connections();
    for (auto& connection : state_->connections) {
        connection.thread.join();
    }
}

std::uint16_t Gateway::port() const {
    return state_->proxy_port;
}

std::uint16_t Gateway::dns_port() const {
    return state_->dns_port;
}

const std::vector<TcpEndpoint>& Gateway::tcp_endpoints() const {
    return state_->tcp_endpoints;
}

void Gateway::begin_phase(policy::Phase phase) {
    {
        const std::lock_guard lock(state_->mutex);
        state_->phase = phase;
    }
    state_->end_connections();
}

GatewayUsage Gateway::usage() const {
    const std::lock_guard lock(state_->mutex);
    GatewayUsage usage;
    usage.bytes_up = state_->bytes_up.load();
    usage.bytes_down = state_->bytes_down.load();
    usage.allowed = state_->allowed;
    usage.blocked = state_->blocked;
    for (const auto& [attempt, counters] : state_->tallies) {
        usage.attempts.push_back(
            {attempt, counters.count, counters.up.load(), counters.down.load()});
    }
    usage.attempts_not_listed = state_->unlisted.count;
    for (const auto& [key, tally] : state_->names) {
        usage.names.push_back(tally);
    }
    usage.names_not_listed = state_->names_unlisted;
    return usage;
}

} // namespace contractor::gateway

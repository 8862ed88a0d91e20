#pragma once

#include "gateway/http_head.hpp"
#include "gateway/socket.hpp"

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

// Serving one client connection of the gateway, from request head to the end of the relay.
namespace contractor::gateway {

// The allowlist's answer for one attempt.
struct Decision {
    bool allowed = false;
    std::string phase;
};

// What a connection needs from the gateway that accepted it.
struct ConnectionEnvironment {
    int stop_fd = -1;                       // readable once the gateway is stopping
    std::optional<Endpoint> upstream_proxy; // go through this proxy instead of directly
    std::map<std::string, std::string> hosts_override;
    // Checks host:port/protocol against the current allowlist and records the attempt.
    std::function<Decision(const Endpoint&, policy::Protocol)> decide;
    std::atomic<std::uint64_t>* bytes_up = nullptr;
    std::atomic<std::uint64_t>* bytes_down = nullptr;
};

// Reads the request head from `client`, answers 400/403/502 or relays to the destination, and
// closes the connection. Never throws.
void serve_connection(Fd client, const ConnectionEnvironment& environment) noexcept;

} // namespace contractor::gateway

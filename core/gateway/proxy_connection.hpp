#pragma once

#include "gateway/http_head.hpp"
#include "gateway/relay.hpp"
#include "gateway/socket.hpp"

#include <functional>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <vector>

// Serving one client connection of the gateway: an HTTP proxy request or a tcp rule's
// connection, from the gateway's decision to the end of the relay.
namespace contractor::gateway {

// The gateway's answer for one attempt, recorded before it is returned.
struct Admission {
    bool allowed = false;
    std::string refusal;                     // why not, when not allowed
    std::string phase;                       // the phase whose allowlist decided
    std::vector<sockaddr_storage> addresses; // checked addresses to connect to, when allowed
    std::string unreachable;                 // allowed, but no address: why (cannot resolve)
    FlowMeter up;                            // worker to destination
    FlowMeter down;                          // destination to worker
};

// What a connection needs from the gateway that accepted it.
struct ConnectionEnvironment {
    int stop_fd = -1;                       // readable once this connection must end
    std::optional<Endpoint> upstream_proxy; // http/https go through this proxy instead
    // Checks the allowlist and the destination's addresses and records the attempt.
    std::function<Admission(const Endpoint&, policy::Protocol)> admit;
};

// Reads the request head from `client`, answers 400/403/502 or relays one request (or a
// CONNECT tunnel) to the destination, and closes the connection. Never throws.
void serve_proxy_connection(Fd client, const ConnectionEnvironment& environment) noexcept;

// Relays a connection to a tcp rule's endpoint to `destination`, when the allowlist allows
// it; closes it at once when not. Never throws.
void serve_tcp_connection(Fd client, const Endpoint& destination,
                          const ConnectionEnvironment& environment) noexcept;

} // namespace contractor::gateway

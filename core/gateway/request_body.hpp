#pragma once

#include "gateway/http_head.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

// The body of one proxied request, forwarded to the next hop and not one byte further: what
// the client sends after it (a pipelined request, say) never reaches the next hop.
namespace contractor::gateway {

// The largest chunked request body forwarded. A chunked body announces no size, so only this
// bound ends one that never ends; 1 GiB is far above what a build uploads (package managers
// send small requests) while a Content-Length body, whose size is known up front, is metered
// by the caller instead.
inline constexpr std::uint64_t max_chunked_body = std::uint64_t{1} << 30;

// What forwarding a request body did.
struct BodyForwarded {
    bool ok = false;
    std::string error; // one line, empty when ok
};

// Sends the body of one request, framed as `framing` says, to `send_up` and stops at its end.
// `already` holds the bytes the client sent right after the head; more are read from `client`
// (non-blocking socket), waiting at most `idle_timeout` for each read and returning early when
// `stop_fd` becomes readable. A chunked body is decoded with Beast's parser and sent on
// re-chunked, extensions and trailers dropped; one larger than `max_chunked_body` is refused.
// Bytes the client sends after the body are never passed on (one request per connection).
// `send_up` returns false when the upstream went away. Never throws.
BodyForwarded forward_request_body(int client, const BodyFraming& framing, std::string_view already,
                                   const std::function<bool(std::string_view)>& send_up,
                                   int stop_fd, std::chrono::milliseconds idle_timeout);

} // namespace contractor::gateway

#include "gateway/request_body.hpp"

#include "gateway/socket.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <poll.h>
#include <unistd.h>
#include <utility>

namespace contractor::gateway {

namespace {

namespace http = boost::beast::http;

// Bytes read from the client at a time: a socket buffer's worth, so that a large body moves in
// few system calls while what is held in memory stays small.
constexpr std::size_t read_size = 64 * 1024;

// Bytes Beast may hold back while it waits for the end of a chunk-size line or of the trailer
// section. Real ones take a few bytes; one longer than a whole request head is not a client's.
constexpr std::size_t max_held_back = max_head_size;

// The head fed to Beast's parser before the body, to put it in its chunked-body state. The
// real head was parsed and checked by parse_request_head; only its framing matters here.
constexpr std::string_view chunked_head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";

// Where and how body bytes are read from the client.
struct ClientSide {
    int fd;
    int stop_fd;
    std::chrono::milliseconds idle_timeout;
};

// Bytes read from the client, or why there are none.
struct Read {
    std::string bytes;
    std::string error; // empty when bytes is not
};

// Reads at most `most` (> 0) bytes, waiting up to the idle timeout for the first of them.
Read read_some(const ClientSide& client, std::size_t most) {
    std::string buffer(std::min(most, read_size), '\0');
    while (true) {
        switch (wait_for(client.fd, POLLIN, client.stop_fd, client.idle_timeout)) {
        case Wait::stopped:
            return {{}, "the gateway is stopping"};
        case Wait::timed_out:
            return {{},
                    "the client sent nothing for " + std::to_string(client.idle_timeout.count()) +
                        " ms in the middle of the request body"};
        case Wait::ready:
            break;
        }
        const ssize_t got = ::read(client.fd, buffer.data(), buffer.size());
        if (got > 0) {
            buffer.resize(static_cast<std::size_t>(got));
            return {std::move(buffer), {}};
        }
        if (got == 0) {
            return {{}, "the client closed the connection before the end of the request body"};
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return {{}, std::string("cannot read the request body: ") + std::strerror(errno)};
        }
    }
}

BodyForwarded failed(std::string error) {
    return {false, std::move(error)};
}

BodyForwarded upstream_gone() {
    return failed("the next hop stopped taking the request body");
}

// A Content-Length body: exactly `length` bytes, from `already` and then from the client.
BodyForwarded forward_length(const ClientSide& client, std::uint64_t length,
                             std::string_view already,
                             const std::function<bool(std::string_view)>& send_up) {
    const std::string_view first =
        already.substr(0, std::min<std::uint64_t>(length, already.size()));
    if (!first.empty() && !send_up(first)) {
        return upstream_gone();
    }
    std::uint64_t left = length - first.size();
    while (left > 0) {
        // Never read past the body: what follows it is not ours to take.
        Read read = read_some(client, std::min<std::uint64_t>(left, read_size));
        if (!read.error.empty()) {
            return failed(std::move(read.error));
        }
        left -= read.bytes.size();
        if (!send_up(read.bytes)) {
            return upstream_gone();
        }
    }
    return {true, {}};
}

std::string chunk(std::string_view data) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string size;
    for (std::size_t n = data.size(); n > 0; n /= 16) {
        size.insert(size.begin(), digits[n % 16]);
    }
    return size + "\r\n" + std::string(data) + "\r\n";
}

std::string chunked_error(const boost::beast::error_code& error) {
    if (error == http::error::body_limit) {
        return "chunked request body larger than " + std::to_string(max_chunked_body >> 30) +
               " GiB";
    }
    return "malformed chunked request body (" + error.message() + ")";
}

// Decodes one chunked body with Beast's parser and re-chunks what it decodes; stops at the
// end of the body. Not movable: the parser keeps a reference to the chunk callback.
class ChunkedBody {
public:
    ChunkedBody() {
        on_chunk_ = [this](std::uint64_t, boost::beast::string_view data,
                           boost::beast::error_code&) {
            if (!data.empty()) {
                output_ += chunk({data.data(), data.size()});
            }
            return data.size();
        };
        parser_.body_limit(max_chunked_body);
        parser_.eager(true);
        parser_.on_chunk_body(on_chunk_);
        boost::beast::error_code error;
        parser_.put(boost::asio::const_buffer(chunked_head.data(), chunked_head.size()), error);
    }
    ChunkedBody(const ChunkedBody&) = delete;
    ChunkedBody& operator=(const ChunkedBody&) = delete;

    // Takes more bytes of the body; returns the re-chunked bytes to send on, ending with the
    // last chunk once the body is complete. Sets `error` when the body is refused.
    std::string take(std::string_view bytes, std::string& error) {
        held_back_.append(bytes);
        boost::beast::error_code parse_error;
        while (!parser_.is_done() && !held_back_.empty() && !parse_error) {
            const std::size_t used = parser_.put(
                boost::asio::const_buffer(held_back_.data(), held_back_.size()), parse_error);
            held_back_.erase(0, used);
            if (used == 0 && !parse_error) {
                break;
            }
        }
        if (parse_error && parse_error != http::error::need_more) {
            error = chunked_error(parse_error);
        } else if (!parser_.is_done() && held_back_.size() > max_held_back) {
            error = "a chunk-size line or trailer section longer than 64 KiB";
        } else if (parser_.is_done()) {
            output_ += "0\r\n\r\n"; // the trailers are dropped with whatever follows the body
        }
        return std::exchange(output_, {});
    }

    bool done() const { return parser_.is_done(); }

private:
    std::string output_;
    std::string held_back_;
    std::function<std::size_t(std::uint64_t, boost::beast::string_view, boost::beast::error_code&)>
        on_chunk_;
    http::request_parser<http::empty_body> parser_;
};

BodyForwarded forward_chunked(const ClientSide& client, std::string_view already,
                              const std::function<bool(std::string_view)>& send_up) {
    ChunkedBody body;
    std::string bytes(already);
    while (true) {
        std::string error;
        const std::string output = body.take(bytes, error);
        if (!error.empty()) {
            return failed(std::move(error));
        }
        if (!output.empty() && !send_up(output)) {
            return upstream_gone();
        }
        if (body.done()) {
            return {true, {}};
        }
        Read read = read_some(client, read_size);
        if (!read.error.empty()) {
            return failed(std::move(read.error));
        }
        bytes = std::move(read.bytes);
    }
}

} // namespace

BodyForwarded forward_request_body(int client, const BodyFraming& framing, std::string_view already,
                                   const std::function<bool(std::string_view)>& send_up,
                                   int stop_fd, std::chrono::milliseconds idle_timeout) {
    const ClientSide side{client, stop_fd, idle_timeout};
    try {
        switch (framing.kind) {
        case BodyFraming::Kind::none:
            return {true, {}};
        case BodyFraming::Kind::length:
            return forward_length(side, framing.length, already, send_up);
        case BodyFraming::Kind::chunked:
            return forward_chunked(side, already, send_up);
        }
        return failed("unknown body framing");
    } catch (const std::exception& error) {
        return failed(std::string("cannot forward the request body: ") + error.what());
    } catch (...) {
        return failed("cannot forward the request body: unexpected failure");
    }
}

} // namespace contractor::gateway

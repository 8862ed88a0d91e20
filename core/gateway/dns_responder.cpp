#include "gateway/dns_responder.hpp"

#include <cerrno>
#include <poll.h>
#include <unistd.h>

namespace contractor::gateway {

namespace {

using Clock = std::chrono::steady_clock;
using Address = std::array<std::uint8_t, 4>;

// RFC 1035 4.1.1: the header is six 16-bit fields.
constexpr std::size_t header_size = 12;
// RFC 1035 2.3.4: 255 bytes on the wire, which is 253 characters written out without the
// trailing dot.
constexpr std::size_t max_name_length = 253;
// RFC 1035 2.3.4; a longer length byte would also have a label-type bit set.
constexpr std::size_t max_label_length = 63;
// RFC 1035 4.1.4: the two top bits of a length byte say what it is. 00 is a label; 11 a
// compression pointer; 01 and 10 are extended label types nobody uses (RFC 6891 5).
constexpr std::uint8_t label_type_bits = 0xC0;
// RFC 1035 3.2.2 and 3.2.4: the only type and class we give records for.
constexpr std::uint16_t type_a = 1;
constexpr std::uint16_t class_in = 1;
// RFC 1035 4.1.1: the QR bit (set in a response), the RD bit (copied from the query), and
// where the 4-bit opcode sits in the flags (QUERY is 0).
constexpr std::uint16_t flag_response = 0x8000;
constexpr std::uint16_t flag_recursion_desired = 0x0100;
constexpr std::uint16_t opcode_bits = 0x7800;
// RFC 1035 4.1.4: the answer's name is a pointer to the question's, which starts right after
// the header.
constexpr std::uint16_t pointer_to_question_name = 0xC000 | header_size;
// glibc does not cache, but a cache inside the build (nscd, a language runtime's) should not
// keep a name for long after the allowlist changes between phases; a minute still spares a
// build that resolves the same name in a loop.
constexpr std::uint32_t answer_ttl_seconds = 60;
// RFC 7766 8: each message over TCP follows its length as two big-endian bytes.
constexpr std::size_t length_prefix_size = 2;
// One read takes several pipelined queries at once; it also bounds the reader's buffer to an
// incomplete message plus one read.
constexpr std::size_t read_chunk_size = 4096;
// Our answers are a few hundred bytes at most and fit in the socket buffer; a client that
// does not take them within this long is not reading.
constexpr std::chrono::seconds send_timeout(10);

// RFC 1035 4.1.1 response codes we send.
enum class Rcode : std::uint16_t { no_error = 0, format_error = 1, name_error = 3, refused = 5 };

struct Header {
    std::uint16_t id = 0;
    std::uint16_t flags = 0;
    std::uint16_t question_count = 0;
    std::uint16_t answer_count = 0;
    std::uint16_t authority_count = 0;
    std::uint16_t additional_count = 0;
};

std::uint16_t u16_at(std::string_view bytes, std::size_t offset) {
    return static_cast<std::uint16_t>(static_cast<std::uint8_t>(bytes[offset]) << 8 |
                                      static_cast<std::uint8_t>(bytes[offset + 1]));
}

// The header of a message of at least header_size bytes.
Header read_header(std::string_view message) {
    return {u16_at(message, 0), u16_at(message, 2), u16_at(message, 4),
            u16_at(message, 6), u16_at(message, 8), u16_at(message, 10)};
}

// Reads a message front to back without ever reading past its end.
class Cursor {
public:
    explicit Cursor(std::string_view bytes) : bytes_(bytes) {}

    std::optional<std::uint8_t> byte() {
        if (offset_ >= bytes_.size()) {
            return std::nullopt;
        }
        return static_cast<std::uint8_t>(bytes_[offset_++]);
    }
    std::optional<std::uint16_t> u16() {
        const auto taken = take(2);
        if (!taken) {
            return std::nullopt;
        }
        return u16_at(*taken, 0);
    }
    std::optional<std::string_view> take(std::size_t count) {
        if (bytes_.size() - offset_ < count) {
            return std::nullopt;
        }
        const std::string_view taken = bytes_.substr(offset_, count);
        offset_ += count;
        return taken;
    }
    std::size_t offset() const { return offset_; }
    bool at_end() const { return offset_ == bytes_.size(); }

private:
    std::string_view bytes_;
    std::size_t offset_ = 0;
};

char to_lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Letters, digits, '-' and '_' (as in "_http._tcp"). A dot or a control byte inside a label
// would make the name in the report differ from the name a program meant.
bool allowed_label_byte(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Appends one label, lower-cased, to `name`; false when it has a byte we refuse.
bool append_label(std::string& name, std::string_view label) {
    if (!name.empty()) {
        name += '.';
    }
    for (const char byte : label) {
        const char lower = to_lower(byte);
        if (!allowed_label_byte(lower)) {
            return false;
        }
        name += lower;
    }
    return true;
}

// Reads an uncompressed name, lower-cased and without the trailing dot; nullopt when it is
// not one within RFC 1035's lengths. Compression pointers are refused: a query's only name has
// nothing before it to point to, and following pointers is how a parser is made to loop or to
// read outside the message.
std::optional<std::string> read_name(Cursor& cursor) {
    std::string name;
    while (true) {
        const auto length = cursor.byte();
        if (!length || (*length & label_type_bits) != 0 || *length > max_label_length) {
            return std::nullopt;
        }
        if (*length == 0) {
            return name;
        }
        const std::size_t separator = name.empty() ? 0 : 1;
        if (name.size() + separator + *length > max_name_length) {
            return std::nullopt;
        }
        const auto label = cursor.take(*length);
        if (!label || !append_label(name, *label)) {
            return std::nullopt;
        }
    }
}

// What a message is, as far as the responder is concerned.
enum class Verdict { query, malformed, other_opcode, other_class };

struct Examined {
    Verdict verdict = Verdict::malformed;
    DnsQuestion question;
    std::string_view question_bytes; // as received; set for query and other_class
};

// Sorts out a message of at least header_size bytes whose header is `header`.
Examined examine(std::string_view message, const Header& header) {
    if (message.size() > max_dns_query_size || (header.flags & flag_response) != 0) {
        return {};
    }
    if ((header.flags & opcode_bits) != 0) {
        return {Verdict::other_opcode, {}, {}};
    }
    if (header.question_count != 1 || header.answer_count != 0 || header.authority_count != 0 ||
        header.additional_count > 1) {
        return {};
    }
    const std::string_view body = message.substr(header_size);
    Cursor cursor(body);
    auto name = read_name(cursor);
    const auto type = cursor.u16();
    const auto klass = cursor.u16();
    if (!name || !type || !klass) {
        return {};
    }
    // Only the one additional record may follow: an EDNS OPT record, as dig sends. It is
    // ignored, and the answer carries none, which RFC 6891 7 allows.
    if (header.additional_count == 0 && !cursor.at_end()) {
        return {};
    }
    const Verdict verdict = *klass == class_in ? Verdict::query : Verdict::other_class;
    return {verdict, {std::move(*name), *type}, body.substr(0, cursor.offset())};
}

void append_u16(std::string& out, std::uint16_t value) {
    out += static_cast<char>(value >> 8);
    out += static_cast<char>(value & 0xFF);
}

void append_u32(std::string& out, std::uint32_t value) {
    append_u16(out, static_cast<std::uint16_t>(value >> 16));
    append_u16(out, static_cast<std::uint16_t>(value & 0xFFFF));
}

// A response header for `query`: its ID, its opcode and RD bit; no AA, TC or RA.
std::string response_header(const Header& query, Rcode rcode, std::uint16_t questions,
                            std::uint16_t answers) {
    const auto flags = static_cast<std::uint16_t>(
        flag_response | (query.flags & (opcode_bits | flag_recursion_desired)) |
        static_cast<std::uint16_t>(rcode));
    std::string out;
    append_u16(out, query.id);
    append_u16(out, flags);
    append_u16(out, questions);
    append_u16(out, answers);
    append_u16(out, 0); // authority records
    append_u16(out, 0); // additional records
    return out;
}

void append_address_record(std::string& out, const Address& address) {
    append_u16(out, pointer_to_question_name);
    append_u16(out, type_a);
    append_u16(out, class_in);
    append_u32(out, answer_ttl_seconds);
    append_u16(out, static_cast<std::uint16_t>(address.size()));
    out.append(address.begin(), address.end());
}

// The response to a well-formed query, given what the lookup said about its name.
std::string answer_query(const Header& header, const Examined& query,
                         const std::optional<Address>& address) {
    if (!address) {
        return response_header(header, Rcode::name_error, 1, 0) + std::string(query.question_bytes);
    }
    const bool give_address = query.question.type == type_a;
    std::string out = response_header(header, Rcode::no_error, 1, give_address ? 1 : 0);
    out += query.question_bytes;
    if (give_address) {
        append_address_record(out, *address);
    }
    return out;
}

// Length-prefixed messages from one client, read with a bounded buffer.
class MessageReader {
public:
    MessageReader(int fd, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {}

    // The next message, or nullopt when the client closed, did not send it in full within
    // `timeout`, announced one longer than max_dns_query_size, or the stop event fired.
    std::optional<std::string> next(std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (true) {
            if (buffer_.size() >= length_prefix_size) {
                const std::size_t length = u16_at(buffer_, 0);
                if (length > max_dns_query_size) {
                    return std::nullopt;
                }
                if (buffer_.size() >= length_prefix_size + length) {
                    std::string message = buffer_.substr(length_prefix_size, length);
                    buffer_.erase(0, length_prefix_size + length);
                    return message;
                }
            }
            // Only reached with less than one whole message buffered, so the buffer stays
            // under length_prefix_size + max_dns_query_size + read_chunk_size.
            if (!fill(deadline)) {
                return std::nullopt;
            }
        }
    }

private:
    // Reads what the client has sent; false when it closed, failed, or nothing came in time.
    bool fill(Clock::time_point deadline) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0 || wait_for(fd_, POLLIN, stop_fd_, left) != Wait::ready) {
            return false;
        }
        char chunk[read_chunk_size];
        const ssize_t got = ::read(fd_, chunk, sizeof chunk);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return true;
        }
        if (got <= 0) {
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(got));
        return true;
    }

    int fd_;
    int stop_fd_;
    std::string buffer_;
};

std::string with_length_prefix(const std::string& message) {
    std::string out;
    append_u16(out, static_cast<std::uint16_t>(message.size()));
    return out + message;
}

void serve(Fd client, int stop_fd, const DnsLookup& lookup,
           const std::function<void(const DnsQuestion&)>& record,
           std::chrono::milliseconds idle_timeout) {
    set_nonblocking(client.get());
    MessageReader reader(client.get(), stop_fd);
    for (std::size_t count = 0; count < max_dns_queries_per_connection; ++count) {
        const auto message = reader.next(idle_timeout);
        if (!message || stop_requested(stop_fd)) {
            return;
        }
        // Recorded before the lookup runs, so that a failing lookup still leaves a trace.
        if (const auto question = parse_dns_query(*message)) {
            record(*question);
        }
        const std::string response = dns_response(*message, lookup, nullptr);
        // Without a header there is no ID to answer: the client is not speaking DNS.
        if (response.empty() ||
            !send_all(client.get(), with_length_prefix(response), stop_fd, send_timeout)) {
            return;
        }
    }
}

} // namespace

std::optional<DnsQuestion> parse_dns_query(std::string_view message) {
    if (message.size() < header_size) {
        return std::nullopt;
    }
    Examined examined = examine(message, read_header(message));
    if (examined.verdict != Verdict::query) {
        return std::nullopt;
    }
    return std::move(examined.question);
}

std::string dns_response(std::string_view query, const DnsLookup& lookup,
                         std::optional<DnsQuestion>* asked) {
    if (asked != nullptr) {
        asked->reset();
    }
    if (query.size() < header_size) {
        return {};
    }
    const Header header = read_header(query);
    const Examined examined = examine(query, header);
    switch (examined.verdict) {
    case Verdict::malformed:
        return response_header(header, Rcode::format_error, 0, 0);
    case Verdict::other_opcode:
        return response_header(header, Rcode::refused, 0, 0);
    case Verdict::other_class:
        return response_header(header, Rcode::refused, 1, 0) + std::string(examined.question_bytes);
    case Verdict::query:
        break;
    }
    if (asked != nullptr) {
        *asked = examined.question;
    }
    return answer_query(header, examined, lookup(examined.question));
}

void serve_dns_connection(Fd client, int stop_fd, const DnsLookup& lookup,
                          const std::function<void(const DnsQuestion&)>& record,
                          std::chrono::milliseconds idle_timeout) noexcept {
    try {
        serve(std::move(client), stop_fd, lookup, record, idle_timeout);
    } catch (...) {
        // Out of memory, or a lookup or record callback that threw: this connection closes,
        // the gateway and its other connections go on. Any type, because the callbacks are
        // the caller's.
    }
}

} // namespace contractor::gateway

#pragma once

#include "connection/stream.hpp"

#include <functional>
#include <memory>
#include <string>
#include <string_view>

// One hop of a connection chain (see reference/004 "Connections"): the host itself, an SSH
// server reached over a socket, or an SSH server reached through a tunnel opened by the hop
// before it. Everything contractor does on another machine goes through these four
// operations, so a chain can be as long as the topology needs: host -> manager -> worker.
namespace contractor::connection {

// Where a command's standard error goes, chunk by chunk, as it arrives.
using ErrorSink = std::function<void(std::string_view)>;

// A command started at a hop: its stdin and stdout are this stream; its stderr goes to the
// ErrorSink it was started with.
class RemoteCommand : public ByteStream {
public:
    // Waits for the command to end; its exit status (128+N when killed by signal N).
    virtual int wait() = 0;
    // Ends the command now (SIGTERM or closing its channel) and reaps it.
    virtual void terminate() = 0;
};

class Hop {
public:
    enum class OnCancel { stop, finish };

    // The most run() and read_file() collect from one command, stdout and stderr each: what is
    // at the other end may be hostile (a worker, or a manager it broke into) and could send
    // without end. More stdout stops the command with InfrastructureError; more stderr is
    // dropped.
    static constexpr std::size_t output_limit = 16 * 1024 * 1024;

    virtual ~Hop() = default;

    // "the local host", "ssh worker@127.0.0.1:40022", for messages.
    virtual std::string describe() const = 0;
    // Runs `command` through the hop's shell (/bin/sh -c).
    virtual std::unique_ptr<RemoteCommand> start(const std::string& command,
                                                 ErrorSink on_stderr = {}) = 0;
    // A TCP connection from the hop to host:port.
    virtual std::unique_ptr<ByteStream> open_tunnel(const std::string& host, int port) = 0;

    // The contents of `path` on the hop. Throws InfrastructureError when it cannot be read.
    std::string read_file(const std::string& path);
    // Creates or replaces `path` on the hop with `content` and permissions `mode`.
    void write_file(const std::string& path, std::string_view content, int mode = 0644);
    // Runs `command` with no input; returns its exit status and collects stdout and stderr
    // (each up to output_limit).
    // On Ctrl-C (util::cancel_requested) the command is stopped and Interrupted thrown, unless
    // it is cleanup that must finish (OnCancel::finish).
    int run(const std::string& command, std::string& output, OnCancel on_cancel = OnCancel::stop);
};

// A stderr sink that keeps the first `limit` bytes in `text` and drops the rest: bounded
// whatever the other end prints. `text` must outlive the command.
ErrorSink bounded_sink(std::string& text, std::size_t limit = Hop::output_limit);

// `text` quoted for a POSIX shell: 'text', with embedded quotes escaped.
std::string shell_quote(std::string_view text);

// A shell command that writes its stdin to `path` with permissions `mode`: into a file beside
// it that is renamed over `path` once complete, so a reader never sees half a file.
std::string replace_file_command(const std::string& path, int mode);

} // namespace contractor::connection

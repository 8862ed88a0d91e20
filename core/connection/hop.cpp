#include "connection/hop.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"

#include <array>
#include <cstdio>

namespace contractor::connection {

std::string shell_quote(std::string_view text) {
    std::string quoted = "'";
    for (char c : text) {
        if (c == '\'') {
            quoted += "'\\''";
        } else {
            quoted += c;
        }
    }
    return quoted + "'";
}

ErrorSink bounded_sink(std::string& text, std::size_t limit) {
    return [&text, limit](std::string_view chunk) {
        const std::size_t room = limit - std::min(text.size(), limit);
        text.append(chunk.substr(0, std::min(room, chunk.size())));
    };
}

namespace {

// Reads everything the command prints until it ends, then its status. Ctrl-C (or, in the
// manager agent, the CLI going away) stops the command and throws Interrupted: a command that
// hangs on a stalled worker must not keep the worker alive.
int collect(RemoteCommand& command, std::string& output,
            Hop::OnCancel on_cancel = Hop::OnCancel::stop) {
    std::array<char, 65536> buffer{};
    for (;;) {
        if (on_cancel == Hop::OnCancel::stop && util::cancel_requested()) {
            command.terminate();
            throw Interrupted(util::cancel_signal());
        }
        const auto count =
            command.read(buffer.data(), buffer.size(), std::chrono::milliseconds(200));
        if (count && *count == 0) {
            break;
        }
        if (count) {
            if (output.size() + *count > Hop::output_limit) {
                command.terminate();
                throw InfrastructureError("a command sent more than " +
                                          std::to_string(Hop::output_limit >> 20) +
                                          " MiB of output, more than it may");
            }
            output.append(buffer.data(), *count);
        }
    }
    return command.wait();
}

} // namespace

int Hop::run(const std::string& command, std::string& output, OnCancel on_cancel) {
    auto started = start(command, bounded_sink(output));
    started->close_write();
    return collect(*started, output, on_cancel);
}

std::string Hop::read_file(const std::string& path) {
    std::string content;
    std::string errors;
    auto command = start("cat -- " + shell_quote(path), bounded_sink(errors));
    command->close_write();
    if (collect(*command, content) != 0) {
        throw InfrastructureError("cannot read " + path + " on " + describe() + ": " + errors);
    }
    return content;
}

std::string replace_file_command(const std::string& path, int mode) {
    char octal[8];
    std::snprintf(octal, sizeof octal, "%o", mode);
    const std::string temporary = path + ".contractor-new";
    return "umask 077 && cat > " + shell_quote(temporary) + " && chmod " + octal + " " +
           shell_quote(temporary) + " && mv -f " + shell_quote(temporary) + " " + shell_quote(path);
}

void Hop::write_file(const std::string& path, std::string_view content, int mode) {
    std::string errors;
    auto command = start(replace_file_command(path, mode), bounded_sink(errors));
    command->write(content.data(), content.size());
    command->close_write();
    std::string output;
    if (collect(*command, output) != 0) {
        throw InfrastructureError("cannot write " + path + " on " + describe() + ": " + errors +
                                  output);
    }
}

} // namespace contractor::connection

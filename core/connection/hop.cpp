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
            output.append(buffer.data(), *count);
        }
    }
    return command.wait();
}

} // namespace

int Hop::run(const std::string& command, std::string& output, OnCancel on_cancel) {
    auto started = start(command, [&output](std::string_view chunk) { output.append(chunk); });
    started->close_write();
    return collect(*started, output, on_cancel);
}

std::string Hop::read_file(const std::string& path) {
    std::string content;
    std::string errors;
    auto command = start("cat -- " + shell_quote(path),
                         [&errors](std::string_view chunk) { errors.append(chunk); });
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
    auto command = start(replace_file_command(path, mode),
                         [&errors](std::string_view chunk) { errors.append(chunk); });
    command->write(content.data(), content.size());
    command->close_write();
    std::string output;
    if (collect(*command, output) != 0) {
        throw InfrastructureError("cannot write " + path + " on " + describe() + ": " + errors +
                                  output);
    }
}

} // namespace contractor::connection

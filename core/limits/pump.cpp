#include "limits/pump.hpp"

#include <vector>

namespace contractor::limits {

int Pump::drain(connection::RemoteCommand& command, Meter meter, const Sink& sink) {
    std::vector<char> buffer(1 << 20);
    for (;;) {
        budget_.check();
        const auto count = command.read(buffer.data(), buffer.size(), slice);
        if (!count) {
            continue;
        }
        if (*count == 0) {
            break;
        }
        const std::uint64_t fits =
            meter == Meter::log ? budget_.charge_log(*count) : budget_.charge_export(*count);
        if (fits > 0) {
            sink(std::string_view(buffer.data(), static_cast<std::size_t>(fits)));
        }
        if (fits < *count) {
            budget_.check(); // throws: the limit was recorded by the charge
        }
    }
    return finish(command);
}

void Pump::pass(std::string_view chunk, Meter meter, const Sink& sink) {
    budget_.check();
    const std::uint64_t fits = meter == Meter::log ? budget_.charge_log(chunk.size())
                                                   : budget_.charge_export(chunk.size());
    if (fits > 0) {
        sink(chunk.substr(0, static_cast<std::size_t>(fits)));
    }
    if (fits < chunk.size()) {
        budget_.check(); // throws: the limit was recorded by the charge
    }
}

connection::ErrorSink Pump::stderr_to(Sink sink) {
    return [this, sink = std::move(sink)](std::string_view chunk) {
        const std::uint64_t fits = budget_.charge_log(chunk.size());
        if (fits > 0) {
            sink(chunk.substr(0, static_cast<std::size_t>(fits)));
        }
    };
}

void Pump::feed(connection::RemoteCommand& command,
                const std::function<std::optional<std::string>(std::chrono::milliseconds)>& next) {
    for (;;) {
        budget_.check();
        const auto chunk = next(slice);
        if (!chunk) {
            break;
        }
        if (!chunk->empty()) {
            command.write(chunk->data(), chunk->size());
        }
    }
    command.close_write();
}

int Pump::finish(connection::RemoteCommand& command) {
    budget_.check();
    const int status = command.wait();
    budget_.check();
    return status;
}

} // namespace contractor::limits

#pragma once

#include "connection/hop.hpp"
#include "limits/budget.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

// The one path for the bytes contractor exchanges with a worker. Every stream the worker
// sends (a command's stdout and stderr, the returning workspace) is charged to the budget as
// it arrives, and only what fits is passed on; every wait between reads and writes checks the
// budget. A wait that blocks inside the connection (a write the worker never reads, an exit
// status it never sends) is ended by the watchdog, which stops the worker when a limit is
// crossed: the stop never depends on the guest.
namespace contractor::limits {

using Sink = std::function<void(std::string_view)>;

// What a stream from the worker counts against.
enum class Meter {
    log,          // build and provisioning output: log-size
    export_stream // the returning workspace tar stream, all of it: export-size
};

class Pump {
public:
    // How long one read waits before the budget is checked again.
    static constexpr std::chrono::milliseconds slice{200};

    explicit Pump(Budget& budget) : budget_(budget) {}

    // Copies `command`'s stdout to `sink` until it ends, charging each chunk to `meter`; only
    // the part that fits reaches `sink`, and a crossing throws LimitExceeded at once. Then
    // waits for the command's exit status; returns it.
    int drain(connection::RemoteCommand& command, Meter meter, const Sink& sink);

    // Charges `chunk`, from the worker but read another way (its exchange disk), to `meter`
    // and passes on what fits; a crossing throws LimitExceeded.
    void pass(std::string_view chunk, Meter meter, const Sink& sink);

    // Where a command's stderr goes: charged to log-size, the part that fits passed to `sink`.
    // Never throws (it runs inside the stream's read); the next check does.
    connection::ErrorSink stderr_to(Sink sink);

    // Reads chunks from `next` until it returns nullopt and writes them to `command`'s stdin,
    // then closes it. `next` returns an empty string when nothing arrived within the timeout
    // it is given. Checks the budget between chunks.
    void feed(connection::RemoteCommand& command,
              const std::function<std::optional<std::string>(std::chrono::milliseconds)>& next);

    // Checks the budget now (throws LimitExceeded, NetworkViolation or Interrupted).
    void check() { budget_.check(); }

    // Waits for `command` to end, checking the budget before and after; its exit status.
    int finish(connection::RemoteCommand& command);

private:
    Budget& budget_;
};

} // namespace contractor::limits

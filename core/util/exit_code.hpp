#pragma once

namespace contractor {

// The process exit codes every command uses. They are part of the CLI's contract with CI
// runners: documented in README.md and never renumbered.
enum class ExitCode : int {
    success = 0,        // the build (or command) succeeded
    build_failed = 1,   // the build script exited non-zero
    usage = 2,          // bad command line, bad spec, bad config
    limit_exceeded = 3, // a hard limit was crossed or the network policy was violated
    infrastructure = 4, // VM would not boot, libvirt unreachable, and the like
};

// The numeric value handed to exit().
constexpr int to_int(ExitCode code) {
    return static_cast<int>(code);
}

} // namespace contractor

#pragma once

#include "util/exit_code.hpp"

#include <stdexcept>
#include <string>

namespace contractor {

// Base of every error that reaches the user. Caught exactly once, in the CLI's main, and printed
// as `contractor: error: <what>` followed by `contractor: hint: <hint>` when there is a hint.
class Error : public std::runtime_error {
public:
    Error(const std::string& what, std::string hint, ExitCode exit_code)
        : std::runtime_error(what), hint_(std::move(hint)), exit_code_(exit_code) {}

    // How the user can fix it; may be empty.
    const std::string& hint() const { return hint_; }
    // The exit code main returns for this error.
    ExitCode exit_code() const { return exit_code_; }

private:
    std::string hint_;
    ExitCode exit_code_;
};

// A mistake in how the command was invoked or in a file the user wrote: exit code 2.
class UsageError : public Error {
public:
    explicit UsageError(const std::string& what, std::string hint = {})
        : Error(what, std::move(hint), ExitCode::usage) {}
};

// Something outside the user's input failed (VM, libvirt, disk): exit code 4.
class InfrastructureError : public Error {
public:
    explicit InfrastructureError(const std::string& what, std::string hint = {})
        : Error(what, std::move(hint), ExitCode::infrastructure) {}
};

// The user pressed Ctrl-C or the process got SIGTERM: thrown from waiting loops so that every
// destructor runs; main exits with 128 + the signal number, as shells do.
class Interrupted : public Error {
public:
    explicit Interrupted(int signal)
        : Error(signal == 15 ? "terminated" : "interrupted", {}, ExitCode::usage), signal_(signal) {
    }
    int signal() const { return signal_; }

private:
    int signal_;
};

} // namespace contractor

#pragma once

#include <cerrno>
#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>

// Temporary folders named after the process that made them, so that a later run can tell
// what a killed one left from what a live one is using.
namespace contractor::util {

// Whether `name` is PREFIX PID "-" REST (PID decimal) and that process is gone: the folder
// is a leftover. A process that runs, or cannot be asked (another user's), keeps its folder.
inline bool is_leftover(std::string_view name, std::string_view prefix) {
    if (name.substr(0, prefix.size()) != prefix) {
        return false;
    }
    const std::string_view rest = name.substr(prefix.size());
    const auto dash = rest.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash > 9 ||
        rest.find_first_not_of("0123456789") != dash) {
        return false;
    }
    const pid_t pid = static_cast<pid_t>(std::stol(std::string(rest.substr(0, dash))));
    return ::kill(pid, 0) != 0 && errno == ESRCH;
}

} // namespace contractor::util

#pragma once

#include <string>
#include <string_view>

namespace contractor::util {

// Whether debug messages are shown: CONTRACTOR_DEBUG=1 in the environment, read once.
bool debug_enabled();

// Prints `contractor: debug: [category] message` on stderr when debugging is on. Callers
// building expensive messages check debug_enabled() first.
void debug(std::string_view category, const std::string& message);

// Prints `contractor: message` on stderr: progress and notices for people.
void notice(const std::string& message);

} // namespace contractor::util

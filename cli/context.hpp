#pragma once

#include "spec/config.hpp"

#include <iosfwd>

namespace contractor::cli {

// What every command gets from main: where to find the user config and where to write. Passed
// down explicitly so that tests can run commands in-process with their own streams.
struct Context {
    spec::ConfigLocation config_location;
    std::ostream& out; // machine-readable output and build output
    std::ostream& err; // messages for people
};

} // namespace contractor::cli

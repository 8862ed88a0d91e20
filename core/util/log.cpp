#include "util/log.hpp"

#include <cstdlib>
#include <iostream>

namespace contractor::util {

bool debug_enabled() {
    static const bool enabled = [] {
        const char* value = std::getenv("CONTRACTOR_DEBUG");
        return value != nullptr && *value != '\0' && std::string_view(value) != "0";
    }();
    return enabled;
}

void debug(std::string_view category, const std::string& message) {
    if (debug_enabled()) {
        std::cerr << "contractor: debug: [" << category << "] " << message << std::endl;
    }
}

void notice(const std::string& message) {
    std::cerr << "contractor: " << message << std::endl;
}

} // namespace contractor::util

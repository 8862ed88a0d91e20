#include "spec/units.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <optional>
#include <utility>

namespace contractor::spec {
namespace {

// Largest quantity accepted: 2^62 leaves headroom for sums of limits without overflow.
constexpr double maximum_quantity = 4611686018427387904.0;

struct Number {
    double value;
    std::string_view unit; // the rest of the text, spaces before it removed
};

// A decimal number (digits, optionally a fraction) followed by the unit text.
Number split_number(std::string_view text, std::string_view what) {
    std::size_t i = 0;
    while (i < text.size() && text[i] == ' ') {
        ++i;
    }
    if (i < text.size() && (text[i] == '-' || text[i] == '+')) {
        if (text[i] == '-') {
            throw UnitError(std::string(what) + " cannot be negative");
        }
        ++i;
    }
    const std::size_t start = i;
    std::size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        ++i;
        ++digits;
    }
    if (i < text.size() && text[i] == '.') {
        ++i;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            ++i;
            ++digits;
        }
    }
    if (digits == 0) {
        throw UnitError("expected a number at the start of '" + std::string(text) + "'");
    }
    const double value = std::strtod(std::string(text.substr(start, i - start)).c_str(), nullptr);
    while (i < text.size() && text[i] == ' ') {
        ++i;
    }
    std::string_view unit = text.substr(i);
    while (!unit.empty() && unit.back() == ' ') {
        unit.remove_suffix(1);
    }
    return {value, unit};
}

std::string lowercase(std::string_view text) {
    std::string out(text);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

std::uint64_t checked(double value, std::string_view text, std::string_view what) {
    if (!(value < maximum_quantity)) {
        throw UnitError("'" + std::string(text) + "' is too large for " + std::string(what));
    }
    return static_cast<std::uint64_t>(value);
}

struct UnitFactor {
    std::string_view unit;
    double factor;
};

std::optional<double> size_factor(std::string_view unit) {
    static constexpr std::array<UnitFactor, 15> units = {{
        {"b", 1},
        {"k", 1024.0},
        {"m", 1024.0 * 1024},
        {"g", 1024.0 * 1024 * 1024},
        {"t", 1024.0 * 1024 * 1024 * 1024},
        {"kib", 1024.0},
        {"mib", 1024.0 * 1024},
        {"gib", 1024.0 * 1024 * 1024},
        {"tib", 1024.0 * 1024 * 1024 * 1024},
        {"kb", 1e3},
        {"mb", 1e6},
        {"gb", 1e9},
        {"tb", 1e12},
        {"bytes", 1},
        {"byte", 1},
    }};
    const std::string lower = lowercase(unit);
    for (const auto& candidate : units) {
        if (candidate.unit == lower) {
            return candidate.factor;
        }
    }
    return std::nullopt;
}

} // namespace

std::uint64_t parse_size(std::string_view text) {
    const Number number = split_number(text, "a size");
    if (number.unit.empty()) {
        throw UnitError("'" + std::string(text) + "' has no unit; write e.g. '" +
                        std::string(text) + "MiB' or '" + std::string(text) + "G'");
    }
    const auto factor = size_factor(number.unit);
    if (!factor) {
        throw UnitError("unknown size unit '" + std::string(number.unit) +
                        "'; use B, KiB, MiB, GiB, TiB (or K, M, G, T), or KB, MB, GB, TB");
    }
    return checked(std::floor(number.value * *factor), text, "a size");
}

std::uint64_t parse_duration(std::string_view text) {
    double total = 0;
    std::string_view rest = text;
    bool first = true;
    while (first || !rest.empty()) {
        Number number = split_number(rest, "a duration");
        // The unit is the leading letters; a following number starts the next term (1h30m).
        std::size_t letters = 0;
        while (letters < number.unit.size() &&
               std::isalpha(static_cast<unsigned char>(number.unit[letters]))) {
            ++letters;
        }
        const std::string unit = lowercase(number.unit.substr(0, letters));
        rest = number.unit.substr(letters);
        double factor = 0;
        if (unit.empty() && first && rest.empty()) {
            factor = 1; // a bare number is seconds
        } else if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" ||
                   unit == "seconds") {
            factor = 1;
        } else if (unit == "m" || unit == "min" || unit == "mins" || unit == "minute" ||
                   unit == "minutes") {
            factor = 60;
        } else if (unit == "h" || unit == "hour" || unit == "hours") {
            factor = 3600;
        } else if (unit == "d" || unit == "day" || unit == "days") {
            factor = 86400;
        } else {
            throw UnitError("cannot read '" + std::string(text) +
                            "' as a duration; use s, m, h or d, e.g. '90s', '30m', '1h30m'");
        }
        total += number.value * factor;
        first = false;
    }
    return checked(std::floor(total), text, "a duration");
}

std::uint64_t parse_rate(std::string_view text) {
    const Number number = split_number(text, "a rate");
    std::string_view unit = number.unit;
    if (unit.empty()) {
        throw UnitError("'" + std::string(text) +
                        "' has no unit; write e.g. '10Mbit/s' or '1MiB/s'");
    }
    double bytes_per_unit = 0;
    const std::string lower = lowercase(unit);
    static constexpr std::array<UnitFactor, 8> bit_units = {{
        {"bit/s", 1},
        {"kbit/s", 1e3},
        {"mbit/s", 1e6},
        {"gbit/s", 1e9},
        {"bps", 1},
        {"kbps", 1e3},
        {"mbps", 1e6},
        {"gbps", 1e9},
    }};
    // Only a lower-case b means bits: "MBps" is not megabits.
    const bool says_bytes = unit.find('B') != std::string_view::npos;
    for (const auto& candidate : bit_units) {
        if (!says_bytes && candidate.unit == lower) {
            bytes_per_unit = candidate.factor / 8;
        }
    }
    if (bytes_per_unit == 0 && unit.size() > 2 && unit.substr(unit.size() - 2) == "/s") {
        const std::string_view size_unit = unit.substr(0, unit.size() - 2);
        // "mb/s" could be megabits or megabytes; only an upper-case B says bytes.
        if (size_unit.back() == 'B') {
            if (const auto factor = size_factor(size_unit)) {
                bytes_per_unit = *factor;
            }
        }
    }
    if (bytes_per_unit == 0) {
        throw UnitError("unknown rate unit '" + std::string(unit) +
                        "'; use bit/s, kbit/s, Mbit/s, Gbit/s, or B/s, KiB/s, MiB/s, MB/s");
    }
    const auto value = checked(std::floor(number.value * bytes_per_unit), text, "a rate");
    if (value == 0 && number.value > 0) {
        throw UnitError("'" + std::string(text) + "' is less than one byte per second");
    }
    return value;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr std::array<std::string_view, 5> units = {"B", "KiB", "MiB", "GiB", "TiB"};
    double value = static_cast<double>(bytes);
    std::size_t unit = 0;
    while (value >= 1024 && unit + 1 < units.size()) {
        value /= 1024;
        ++unit;
    }
    char buffer[48];
    if (value == std::floor(value)) {
        std::snprintf(buffer, sizeof buffer, "%.0f %s", value, units[unit].data());
    } else {
        std::snprintf(buffer, sizeof buffer, "%.2f %s", value, units[unit].data());
    }
    return buffer;
}

std::string format_duration(std::uint64_t seconds) {
    static constexpr std::array<std::pair<std::uint64_t, char>, 4> units = {
        {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}}};
    if (seconds == 0) {
        return "0s";
    }
    std::string out;
    for (const auto& [size, letter] : units) {
        if (seconds >= size) {
            if (!out.empty()) {
                out += ' ';
            }
            out += std::to_string(seconds / size) + letter;
            seconds %= size;
        }
    }
    return out;
}

std::string format_rate(std::uint64_t bytes_per_second) {
    const double bits = static_cast<double>(bytes_per_second) * 8;
    char buffer[48];
    if (bits >= 1e9) {
        std::snprintf(buffer, sizeof buffer, "%g Gbit/s", bits / 1e9);
    } else if (bits >= 1e6) {
        std::snprintf(buffer, sizeof buffer, "%g Mbit/s", bits / 1e6);
    } else if (bits >= 1e3) {
        std::snprintf(buffer, sizeof buffer, "%g kbit/s", bits / 1e3);
    } else {
        std::snprintf(buffer, sizeof buffer, "%g bit/s", bits);
    }
    return buffer;
}

} // namespace contractor::spec

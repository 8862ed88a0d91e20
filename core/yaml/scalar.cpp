#include "yaml/scalar.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <vector>

namespace contractor::yaml {
namespace {

bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A cursor over a scalar for the hand-written matchers. std::regex is avoided on purpose:
// libstdc++'s matcher recurses per character and overflows the stack on long scalars.
class Cursor {
public:
    explicit Cursor(std::string_view text) : text_(text) {}

    bool done() const { return pos_ == text_.size(); }
    char peek() const { return done() ? '\0' : text_[pos_]; }
    bool take(char c) {
        if (peek() != c || done()) {
            return false;
        }
        ++pos_;
        return true;
    }
    bool take_any(std::string_view chars) {
        if (done() || chars.find(peek()) == std::string_view::npos) {
            return false;
        }
        ++pos_;
        return true;
    }
    // Takes characters while `pred` holds; returns how many.
    template <typename Pred> std::size_t take_while(Pred pred) {
        const std::size_t start = pos_;
        while (!done() && pred(text_[pos_])) {
            ++pos_;
        }
        return pos_ - start;
    }
    bool take_word(std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) {
            return false;
        }
        pos_ += word.size();
        return true;
    }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
};

auto digit_or_underscore = [](char c) {
    return is_digit(c) || c == '_';
};

// (?::[0-5]?[0-9])+ where only ':', '.' or the end can follow a part: each part is one digit,
// or two digits of which the first is 0-5.
bool take_sexagesimal_parts(Cursor& c) {
    std::size_t parts = 0;
    while (c.take(':')) {
        const char first = c.peek();
        const std::size_t digits = c.take_while(is_digit);
        if (digits == 0 || digits > 2 || (digits == 2 && first > '5')) {
            return false;
        }
        ++parts;
    }
    return parts > 0;
}

// ^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$
bool matches_bool(std::string_view s) {
    static constexpr std::array<std::string_view, 18> words = {
        "yes",   "Yes",   "YES",   "no", "No", "NO", "true", "True", "TRUE",
        "false", "False", "FALSE", "on", "On", "ON", "off",  "Off",  "OFF"};
    return std::find(words.begin(), words.end(), s) != words.end();
}

// ^(?: ~ |null|Null|NULL | )$
bool matches_null(std::string_view s) {
    return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// ^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+
//    |[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$
bool matches_int(std::string_view s) {
    const auto alternative = [&](auto body) {
        Cursor c(s);
        c.take_any("-+");
        return body(c) && c.done();
    };
    return alternative([](Cursor& c) {
               return c.take_word("0b") &&
                      c.take_while([](char ch) { return ch == '0' || ch == '1' || ch == '_'; });
           }) ||
           alternative([](Cursor& c) {
               return c.take('0') &&
                      c.take_while([](char ch) { return (ch >= '0' && ch <= '7') || ch == '_'; });
           }) ||
           alternative([](Cursor& c) {
               if (c.take('0')) {
                   return true;
               }
               return c.take_any("123456789") && (c.take_while(digit_or_underscore), true);
           }) ||
           alternative([](Cursor& c) {
               return c.take_word("0x") &&
                      c.take_while([](char ch) { return is_hex_digit(ch) || ch == '_'; });
           }) ||
           alternative([](Cursor& c) {
               return c.take_any("123456789") && (c.take_while(digit_or_underscore), true) &&
                      take_sexagesimal_parts(c);
           });
}

// (?:[eE][-+][0-9]+)?
bool take_optional_exponent(Cursor& c) {
    if (!c.take_any("eE")) {
        return true;
    }
    return c.take_any("-+") && c.take_while(is_digit) > 0;
}

// ^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
//    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$
bool matches_float(std::string_view s) {
    const auto alternative = [&](auto body) {
        Cursor c(s);
        return body(c) && c.done();
    };
    return alternative([](Cursor& c) {
               c.take_any("-+");
               return c.take_while(is_digit) > 0 && (c.take_while(digit_or_underscore), true) &&
                      c.take('.') && (c.take_while(digit_or_underscore), true) &&
                      take_optional_exponent(c);
           }) ||
           alternative([](Cursor& c) {
               return c.take('.') && c.take_while(is_digit) > 0 &&
                      (c.take_while(digit_or_underscore), true) && take_optional_exponent(c);
           }) ||
           alternative([](Cursor& c) {
               c.take_any("-+");
               return c.take_while(is_digit) > 0 && (c.take_while(digit_or_underscore), true) &&
                      take_sexagesimal_parts(c) && c.take('.') &&
                      (c.take_while(digit_or_underscore), true);
           }) ||
           alternative([](Cursor& c) {
               c.take_any("-+");
               return c.take('.') &&
                      (c.take_word("inf") || c.take_word("Inf") || c.take_word("INF"));
           }) ||
           alternative([](Cursor& c) {
               return c.take('.') &&
                      (c.take_word("nan") || c.take_word("NaN") || c.take_word("NAN"));
           });
}

// The parts of a timestamp, as PyYAML's constructor regex captures them.
struct TimestampParts {
    int year = 0, month = 0, day = 0;
    bool has_time = false;
    int hour = 0, minute = 0, second = 0;
    std::string fraction;
    bool has_zone = false, zone_is_utc = false;
    int zone_sign = 1, zone_hour = 0, zone_minute = 0;
};

int take_number(Cursor& c, std::size_t min_digits, std::size_t max_digits, bool& ok) {
    int value = 0;
    std::size_t count = 0;
    while (count < max_digits && is_digit(c.peek())) {
        value = value * 10 + (c.peek() - '0');
        c.take(c.peek());
        ++count;
    }
    ok = ok && count >= min_digits;
    return value;
}

// The constructor's timestamp_regexp:
// ^(?P<year>[0-9]{4})-(?P<month>[0-9][0-9]?)-(?P<day>[0-9][0-9]?)
//  (?:(?:[Tt]|[ \t]+)(?P<hour>[0-9][0-9]?):(?P<minute>[0-9][0-9]):(?P<second>[0-9][0-9])
//  (?:\.(?P<fraction>[0-9]*))?(?:[ \t]*(?P<tz>Z|(?P<tz_sign>[-+])(?P<tz_hour>[0-9][0-9]?)
//  (?::(?P<tz_minute>[0-9][0-9]))?))?)?$
std::optional<TimestampParts> parse_timestamp(std::string_view s) {
    Cursor c(s);
    TimestampParts t;
    bool ok = true;
    t.year = take_number(c, 4, 4, ok);
    ok = ok && c.take('-');
    t.month = take_number(c, 1, 2, ok);
    ok = ok && c.take('-');
    t.day = take_number(c, 1, 2, ok);
    if (!ok) {
        return std::nullopt;
    }
    if (c.done()) {
        return t;
    }
    const bool separator =
        c.take_any("Tt") || c.take_while([](char ch) { return ch == ' ' || ch == '\t'; }) > 0;
    if (!separator) {
        return std::nullopt;
    }
    t.has_time = true;
    t.hour = take_number(c, 1, 2, ok);
    ok = ok && c.take(':');
    t.minute = take_number(c, 2, 2, ok);
    ok = ok && c.take(':');
    t.second = take_number(c, 2, 2, ok);
    if (!ok) {
        return std::nullopt;
    }
    if (c.take('.')) {
        Cursor start = c;
        const std::size_t digits = c.take_while(is_digit);
        for (std::size_t i = 0; i < digits; ++i) {
            t.fraction += start.peek();
            start.take(start.peek());
        }
    }
    c.take_while([](char ch) { return ch == ' ' || ch == '\t'; });
    if (c.take('Z')) {
        t.has_zone = t.zone_is_utc = true;
    } else if (c.peek() == '-' || c.peek() == '+') {
        t.has_zone = true;
        t.zone_sign = c.peek() == '-' ? -1 : 1;
        c.take(c.peek());
        t.zone_hour = take_number(c, 1, 2, ok);
        if (c.take(':')) {
            t.zone_minute = take_number(c, 2, 2, ok);
        }
    }
    if (!ok || !c.done()) {
        return std::nullopt;
    }
    return t;
}

// The implicit resolver's timestamp regex: a date with exactly two-digit month and day, or a
// date (one or two digits) followed by a time, as parse_timestamp accepts.
bool matches_timestamp(std::string_view s) {
    const auto parts = parse_timestamp(s);
    if (!parts) {
        return false;
    }
    if (!parts->has_time) {
        return s.size() == 10;
    }
    // The resolver is stricter than the constructor in one place: whitespace before the zone is
    // allowed only if a zone follows, which parse_timestamp also enforces by requiring done().
    return true;
}

bool is_leap_year(int year) {
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int days_in_month(int year, int month) {
    static constexpr std::array<int, 12> days = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return month == 2 && is_leap_year(year) ? 29 : days[static_cast<std::size_t>(month - 1)];
}

// datetime.date/datetime(...).isoformat(), raising where Python's datetime raises.
std::string construct_timestamp(std::string_view text) {
    const auto t = parse_timestamp(text);
    if (!t) {
        throw ScalarError("cannot read '" + std::string(text) + "' as a timestamp");
    }
    if (t->year < 1 || t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > days_in_month(t->year, t->month)) {
        throw ScalarError("'" + std::string(text) + "' is not a valid date");
    }
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02d", t->year, t->month, t->day);
    std::string out = buffer;
    if (!t->has_time) {
        return out;
    }
    if (t->hour > 23 || t->minute > 59 || t->second > 59) {
        throw ScalarError("'" + std::string(text) + "' is not a valid time of day");
    }
    std::snprintf(buffer, sizeof buffer, "T%02d:%02d:%02d", t->hour, t->minute, t->second);
    out += buffer;
    std::string fraction = t->fraction.substr(0, 6);
    fraction.resize(6, '0');
    if (!t->fraction.empty() && fraction != "000000") {
        out += "." + fraction;
    }
    if (t->has_zone) {
        const int minutes = t->zone_sign * (t->zone_hour * 60 + t->zone_minute);
        if (std::abs(minutes) >= 24 * 60) {
            throw ScalarError("'" + std::string(text) +
                              "' has a time zone offset of a day or more");
        }
        std::snprintf(buffer, sizeof buffer, "%c%02d:%02d", minutes < 0 ? '-' : '+',
                      std::abs(minutes) / 60, std::abs(minutes) % 60);
        out += buffer;
    }
    return out;
}

std::string without_underscores(std::string_view text) {
    std::string out;
    std::copy_if(text.begin(), text.end(), std::back_inserter(out),
                 [](char c) { return c != '_'; });
    return out;
}

std::string lowercase(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

std::string_view strip_python_whitespace(std::string_view s) {
    const auto is_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    };
    while (!s.empty() && is_space(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_space(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

// Python's int(text, base) for the digit strings the safe constructor hands it. Values beyond
// 64 bits, which Python would keep as big integers, are refused: JSON tools cannot hold them.
unsigned long long python_int_magnitude(std::string_view text, int base, std::string_view whole) {
    text = strip_python_whitespace(text);
    if (text.empty()) {
        throw ScalarError("cannot read '" + std::string(whole) + "' as an integer");
    }
    unsigned long long value = 0;
    for (char c : text) {
        int digit = 0;
        if (is_digit(c)) {
            digit = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            digit = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            digit = c - 'A' + 10;
        } else {
            digit = base;
        }
        if (digit >= base) {
            throw ScalarError("cannot read '" + std::string(whole) + "' as an integer");
        }
        if (__builtin_mul_overflow(value, static_cast<unsigned long long>(base), &value) ||
            __builtin_add_overflow(value, static_cast<unsigned long long>(digit), &value)) {
            throw ScalarError("integer '" + std::string(whole) + "' does not fit in 64 bits");
        }
    }
    return value;
}

nlohmann::ordered_json signed_integer(int sign, unsigned long long magnitude,
                                      std::string_view whole) {
    constexpr auto max_negative =
        static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + 1;
    if (sign < 0) {
        if (magnitude > max_negative) {
            throw ScalarError("integer '" + std::string(whole) + "' does not fit in 64 bits");
        }
        return magnitude == max_negative ? std::numeric_limits<long long>::min()
                                         : -static_cast<long long>(magnitude);
    }
    if (magnitude <= static_cast<unsigned long long>(std::numeric_limits<long long>::max())) {
        return static_cast<long long>(magnitude);
    }
    return magnitude;
}

// The constructors' common start: a leading '-' or '+' taken off and returned as 1 or -1.
int take_sign(std::string& value, std::string_view what) {
    if (value.empty()) {
        throw ScalarError("cannot read an empty value as " + std::string(what));
    }
    const int sign = value[0] == '-' ? -1 : 1;
    if (value[0] == '-' || value[0] == '+') {
        value.erase(0, 1);
    }
    return sign;
}

// The parts of a base-60 number ("1:30:05"), most significant first.
std::vector<std::string> split_on_colons(const std::string& value) {
    std::vector<std::string> parts;
    std::size_t start = 0;
    while (true) {
        const std::size_t colon = value.find(':', start);
        parts.push_back(value.substr(start, colon == std::string::npos ? colon : colon - start));
        if (colon == std::string::npos) {
            return parts;
        }
        start = colon + 1;
    }
}

// SafeConstructor.construct_yaml_int.
nlohmann::ordered_json construct_int(std::string_view text) {
    std::string value = without_underscores(text);
    const int sign = take_sign(value, "an integer");
    if (value == "0") {
        return 0;
    }
    if (value.starts_with("0b")) {
        return signed_integer(sign, python_int_magnitude(value.substr(2), 2, text), text);
    }
    if (value.starts_with("0x")) {
        return signed_integer(sign, python_int_magnitude(value.substr(2), 16, text), text);
    }
    if (!value.empty() && value[0] == '0') {
        // int(value, 8) in Python also accepts the 0o prefix: !!int 0o17 is 15.
        const std::size_t prefix = value.starts_with("0o") || value.starts_with("0O") ? 2 : 0;
        return signed_integer(sign, python_int_magnitude(value.substr(prefix), 8, text), text);
    }
    if (value.find(':') != std::string::npos) {
        unsigned long long total = 0;
        for (const auto& part : split_on_colons(value)) {
            const unsigned long long digit = python_int_magnitude(part, 10, text);
            if (__builtin_mul_overflow(total, 60ULL, &total) ||
                __builtin_add_overflow(total, digit, &total)) {
                throw ScalarError("integer '" + std::string(text) + "' does not fit in 64 bits");
            }
        }
        return signed_integer(sign, total, text);
    }
    return signed_integer(sign, python_int_magnitude(value, 10, text), text);
}

// Python's float(text): optional sign, decimal digits with optional fraction and exponent, or
// inf/infinity/nan. strtod alone would also take hexadecimal floats, which Python refuses.
double python_float(std::string_view text, std::string_view whole) {
    const std::string value = lowercase(std::string(strip_python_whitespace(text)));
    Cursor c(value);
    c.take_any("-+");
    const bool is_special =
        (c.take_word("infinity") || c.take_word("inf") || c.take_word("nan")) && c.done();
    if (!is_special) {
        Cursor d(value);
        d.take_any("-+");
        const std::size_t whole_digits = d.take_while(is_digit);
        std::size_t fraction_digits = 0;
        if (d.take('.')) {
            fraction_digits = d.take_while(is_digit);
        }
        bool ok = whole_digits + fraction_digits > 0;
        if (ok && d.take('e')) {
            d.take_any("-+");
            ok = d.take_while(is_digit) > 0;
        }
        if (!ok || !d.done()) {
            throw ScalarError("cannot read '" + std::string(whole) + "' as a number");
        }
    }
    // strtod reads "inf", "infinity" and "nan" as Python does; the locale is never changed from
    // "C" in this program, so the decimal point is always '.'.
    return std::strtod(value.c_str(), nullptr);
}

nlohmann::ordered_json float_value(double value) {
    if (std::isnan(value)) {
        return ".nan";
    }
    if (std::isinf(value)) {
        return value < 0 ? "-.inf" : ".inf";
    }
    return value;
}

// SafeConstructor.construct_yaml_float.
nlohmann::ordered_json construct_float(std::string_view text) {
    std::string value = lowercase(without_underscores(text));
    const double sign = take_sign(value, "a number");
    if (value == ".inf") {
        return float_value(sign * std::numeric_limits<double>::infinity());
    }
    if (value == ".nan") {
        return float_value(std::numeric_limits<double>::quiet_NaN());
    }
    if (value.find(':') != std::string::npos) {
        std::vector<std::string> parts = split_on_colons(value);
        std::reverse(parts.begin(), parts.end());
        double base = 1;
        double total = 0;
        for (const auto& part : parts) {
            total += python_float(part, text) * base;
            base *= 60;
        }
        return float_value(sign * total);
    }
    return float_value(sign * python_float(value, text));
}

// SafeConstructor.construct_yaml_bool.
bool construct_bool(std::string_view text) {
    const std::string value = lowercase(std::string(text));
    if (value == "yes" || value == "true" || value == "on") {
        return true;
    }
    if (value == "no" || value == "false" || value == "off") {
        return false;
    }
    throw ScalarError("cannot read '" + std::string(text) + "' as a boolean");
}

} // namespace

std::string python_float_repr(double value) {
    // The shortest digits that read back as `value`, then Python's layout: positional for
    // decimal exponents from -4 to 15, scientific (1e+16, 1e-05) outside, ".0" on whole numbers.
    char buffer[64];
    const auto result =
        std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
    const std::string text(buffer, result.ptr);
    const std::size_t e = text.find('e');
    const bool negative = text[0] == '-';
    std::string digits;
    for (char c : text.substr(0, e)) {
        if (is_digit(c)) {
            digits += c;
        }
    }
    const int exponent = std::stoi(text.substr(e + 1));
    std::string out = negative ? "-" : "";
    if (exponent < -4 || exponent >= 16) {
        out += digits.substr(0, 1);
        if (digits.size() > 1) {
            out += "." + digits.substr(1);
        }
        char tail[16];
        std::snprintf(tail, sizeof tail, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
        return out + tail;
    }
    if (exponent < 0) {
        return out + "0." + std::string(static_cast<std::size_t>(-exponent - 1), '0') + digits;
    }
    const auto whole = static_cast<std::size_t>(exponent) + 1;
    if (digits.size() <= whole) {
        return out + digits + std::string(whole - digits.size(), '0') + ".0";
    }
    return out + digits.substr(0, whole) + "." + digits.substr(whole);
}

ScalarType resolve_plain_scalar(std::string_view text) {
    // The order is PyYAML's: bool, float, int, merge, null, timestamp, value.
    if (matches_bool(text)) {
        return ScalarType::boolean;
    }
    if (matches_float(text)) {
        return ScalarType::floating;
    }
    if (matches_int(text)) {
        return ScalarType::integer;
    }
    if (text == "<<") {
        return ScalarType::merge;
    }
    if (matches_null(text)) {
        return ScalarType::null;
    }
    if (matches_timestamp(text)) {
        return ScalarType::timestamp;
    }
    if (text == "=") {
        return ScalarType::value;
    }
    return ScalarType::string;
}

nlohmann::ordered_json construct_scalar(ScalarType type, std::string_view text) {
    switch (type) {
    case ScalarType::null:
        return nullptr;
    case ScalarType::boolean:
        return construct_bool(text);
    case ScalarType::integer:
        return construct_int(text);
    case ScalarType::floating:
        return construct_float(text);
    case ScalarType::timestamp:
        return construct_timestamp(text);
    case ScalarType::string:
        return std::string(text);
    case ScalarType::merge:
    case ScalarType::value:
        break;
    }
    // PyYAML has no constructor for these outside a mapping key, so safe_load fails too.
    throw ScalarError("'" + std::string(text) +
                      "' cannot stand alone as a value in YAML 1.1 (quote it)");
}

std::optional<ScalarType> scalar_type_for_tag(std::string_view tag) {
    static constexpr std::string_view prefix = "tag:yaml.org,2002:";
    if (!tag.starts_with(prefix)) {
        return std::nullopt;
    }
    const std::string_view name = tag.substr(prefix.size());
    if (name == "str") {
        return ScalarType::string;
    }
    if (name == "int") {
        return ScalarType::integer;
    }
    if (name == "float") {
        return ScalarType::floating;
    }
    if (name == "bool") {
        return ScalarType::boolean;
    }
    if (name == "null") {
        return ScalarType::null;
    }
    if (name == "timestamp") {
        return ScalarType::timestamp;
    }
    return std::nullopt;
}

std::string json_key(const nlohmann::ordered_json& key) {
    if (key.is_string()) {
        return key.get<std::string>();
    }
    if (key.is_number_float()) {
        return python_float_repr(key.get<double>());
    }
    // json.dumps writes non-string keys the way it writes the same values: 1, 1.5, true, null.
    return key.dump();
}

} // namespace contractor::yaml

#pragma once

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <string_view>

// YAML 1.1 scalars exactly as PyYAML's SafeLoader resolves and constructs them. yaml-cpp parses
// the syntax; this file decides what a scalar means, so `contractor dump` agrees with
// `yaml.safe_load`. The rules mirror PyYAML's resolver.py and constructor.py; each matcher below
// names the regular expression it implements.
namespace contractor::yaml {

// The type PyYAML assigns to a scalar.
enum class ScalarType { null, boolean, integer, floating, timestamp, string, merge, value };

// A scalar that cannot be constructed with the type it resolved to or was tagged with.
class ScalarError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The type PyYAML's implicit resolver gives a plain (unquoted, untagged) scalar.
ScalarType resolve_plain_scalar(std::string_view text);

// The value PyYAML's SafeConstructor builds for `text` as `type`. Timestamps become ISO 8601
// strings (datetime.isoformat()), infinities and NaN the strings ".inf", "-.inf" and ".nan"
// because JSON has no such numbers. Throws ScalarError where PyYAML raises.
nlohmann::ordered_json construct_scalar(ScalarType type, std::string_view text);

// The scalar type an explicit tag such as `tag:yaml.org,2002:int` asks for, if it is one of the
// scalar tags the safe loader knows and JSON can hold.
std::optional<ScalarType> scalar_type_for_tag(std::string_view tag);

// repr() of a finite float in Python: 1.5, 1e+16, 1e-05, 1000000000000000.0.
std::string python_float_repr(double value);

// A mapping key as Python's json.dumps writes it: strings as they are, numbers in their repr,
// true/false/null as words.
std::string json_key(const nlohmann::ordered_json& key);

} // namespace contractor::yaml

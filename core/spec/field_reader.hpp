#pragma once

#include "policy/network_rule.hpp"
#include "spec/limits.hpp"
#include "yaml/document.hpp"

#include <nlohmann/json.hpp>

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace contractor::spec {

// Typed, located access to a parsed YAML document: every accessor either returns a value of
// the type the schema wants or throws yaml::SourceError pointing at the offending text.
// Shared by the spec and the user config, which use the same `limits` and `network` schema.
class FieldReader {
public:
    explicit FieldReader(const yaml::Document& document) : document_(document) {}

    // The value at `pointer`, or nullptr when absent.
    const nlohmann::ordered_json* find(const std::string& pointer) const;

    // Requires a mapping at `pointer` whose keys all come from `allowed`; suggests the closest
    // allowed key for a typo and rejects keys written twice. `what` names it in messages.
    void check_mapping(const std::string& pointer, std::initializer_list<std::string_view> allowed,
                       std::string_view what) const;

    // A required key of the mapping at `pointer`.
    void require_key(const std::string& pointer, std::string_view key, std::string_view what) const;

    // A non-empty string. Numbers are not silently turned into strings.
    std::string string(const std::string& pointer) const;

    // A list of non-empty strings; an absent or empty (null) value is an empty list.
    std::vector<std::string> string_list(const std::string& pointer) const;

    // true or false (YAML 1.1 also reads yes/no/on/off as booleans); nothing else.
    bool boolean(const std::string& pointer) const;

    // The `limits:` mapping at `pointer` (or one with the same keys, such as the config's
    // `ceilings:`); `what` names it in messages.
    Limits limits(const std::string& pointer, std::string_view what = "limits") const;

    // The `network:` mapping at `pointer`; the config's also has `on-violation` and
    // `spec-may-reach-host` (read by the config loader).
    policy::NetworkRules network(const std::string& pointer, bool config_keys = false) const;

    // Throws a SourceError at the value at `pointer`.
    [[noreturn]] void fail_at_value(const std::string& pointer, const std::string& message,
                                    std::string hint = {}) const;
    // Throws a SourceError at the key of the value at `pointer`.
    [[noreturn]] void fail_at_key(const std::string& pointer, const std::string& message,
                                  std::string hint = {}) const;

    // Keys written twice in the mapping at `pointer`.
    std::vector<yaml::DuplicateKey> duplicate_keys(const std::string& pointer) const;

    // The file name used in messages.
    const std::string& file() const { return document_.file; }

    // "a string", "an integer", ... as PyYAML would type the value.
    static std::string describe_type(const nlohmann::ordered_json& value);

    // A value of the kind `field` describes (a size, a count, ...), at least its minimum.
    std::uint64_t limit_value(const std::string& pointer, const LimitField& field) const;

private:
    std::vector<policy::NetworkRule> rules(const std::string& pointer) const;
    policy::NetworkRule rule(const std::string& pointer) const;

    const yaml::Document& document_;
};

} // namespace contractor::spec

#include "spec/field_reader.hpp"

#include "spec/units.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cctype>
#include <vector>

namespace contractor::spec {

using nlohmann::ordered_json;

const ordered_json* FieldReader::find(const std::string& pointer) const {
    const ordered_json::json_pointer path(pointer);
    if (!document_.value.contains(path)) {
        return nullptr;
    }
    return &document_.value.at(path);
}

void FieldReader::fail_at_value(const std::string& pointer, const std::string& message,
                                std::string hint) const {
    throw yaml::SourceError(document_.file, document_.value_mark(pointer), message,
                            std::move(hint));
}

void FieldReader::fail_at_key(const std::string& pointer, const std::string& message,
                              std::string hint) const {
    throw yaml::SourceError(document_.file, document_.key_mark(pointer), message, std::move(hint));
}

std::string FieldReader::describe_type(const ordered_json& value) {
    switch (value.type()) {
    case ordered_json::value_t::null:
        return "an empty value (null)";
    case ordered_json::value_t::boolean:
        return std::string("a boolean (") + (value.get<bool>() ? "true" : "false") + ")";
    case ordered_json::value_t::number_integer:
    case ordered_json::value_t::number_unsigned:
        return "an integer (" + value.dump() + ")";
    case ordered_json::value_t::number_float:
        return "a number (" + value.dump() + ")";
    case ordered_json::value_t::string:
        return "a string";
    case ordered_json::value_t::array:
        return "a list";
    case ordered_json::value_t::object:
        return "a mapping";
    default:
        return "a value";
    }
}

namespace {

std::string key_name(const std::string& pointer) {
    return pointer.substr(pointer.rfind('/') + 1);
}

// The hint for a value that YAML 1.1 typed differently from what the writer meant.
std::string quoting_hint(const ordered_json& value) {
    if (value.is_boolean() || value.is_null() || value.is_number()) {
        return "YAML reads yes/no/on/off as booleans, ~ and empty as null, and digits as "
               "numbers; put the value in quotes to make it a string";
    }
    return {};
}

} // namespace

void FieldReader::check_mapping(const std::string& pointer,
                                std::initializer_list<std::string_view> allowed,
                                std::string_view what) const {
    const ordered_json* value = find(pointer);
    if (value == nullptr || value->is_null()) {
        return;
    }
    if (!value->is_object()) {
        fail_at_value(pointer,
                      std::string(what) + " must be a mapping, not " + describe_type(*value));
    }
    const std::vector<std::string_view> candidates(allowed);
    for (const auto& [key, item] : value->items()) {
        if (std::find(candidates.begin(), candidates.end(), key) != candidates.end()) {
            continue;
        }
        std::string message = "unknown key " + util::quoted(key) + " in " + std::string(what);
        if (const auto suggestion = util::closest_match(key, candidates)) {
            message += " (did you mean '" + *suggestion + "'?)";
        }
        std::string valid;
        for (auto candidate : candidates) {
            valid += (valid.empty() ? "" : ", ") + std::string(candidate);
        }
        fail_at_key(yaml::child_pointer(pointer, key), message, "valid keys: " + valid);
    }
    for (const auto& duplicate : duplicate_keys(pointer)) {
        throw yaml::SourceError(document_.file, duplicate.mark,
                                "key " + util::quoted(duplicate.key) + " is given twice in " +
                                    std::string(what),
                                "keep one of them");
    }
}

std::vector<yaml::DuplicateKey> FieldReader::duplicate_keys(const std::string& pointer) const {
    std::vector<yaml::DuplicateKey> out;
    std::copy_if(document_.duplicate_keys.begin(), document_.duplicate_keys.end(),
                 std::back_inserter(out),
                 [&](const yaml::DuplicateKey& key) { return key.mapping_pointer == pointer; });
    return out;
}

void FieldReader::require_key(const std::string& pointer, std::string_view key,
                              std::string_view what) const {
    if (find(yaml::child_pointer(pointer, key)) == nullptr) {
        fail_at_value(pointer,
                      "missing required key '" + std::string(key) + "' in " + std::string(what));
    }
}

std::string FieldReader::string(const std::string& pointer) const {
    const ordered_json* value = find(pointer);
    if (value == nullptr || !value->is_string()) {
        fail_at_value(pointer,
                      "'" + key_name(pointer) + "' must be a string, not " +
                          describe_type(value ? *value : ordered_json()),
                      value ? quoting_hint(*value) : std::string());
    }
    const auto& text = value->get_ref<const std::string&>();
    // Every string of the schema ends up as a path, a command line, an environment value or a
    // host name, none of which can hold a NUL byte.
    if (text.find('\0') != std::string::npos) {
        fail_at_value(pointer, "'" + key_name(pointer) + "' must not contain a NUL character");
    }
    if (std::all_of(text.begin(), text.end(),
                    [](unsigned char c) { return std::isspace(c) != 0; })) {
        fail_at_value(pointer, "'" + key_name(pointer) + "' must not be empty");
    }
    return text;
}

std::vector<std::string> FieldReader::string_list(const std::string& pointer) const {
    const ordered_json* value = find(pointer);
    if (value == nullptr || value->is_null()) {
        return {};
    }
    if (!value->is_array()) {
        fail_at_value(
            pointer, "'" + key_name(pointer) + "' must be a list, not " + describe_type(*value),
            value->is_string() ? "write '- " + value->get<std::string>() +
                                     "' on the next line, or [" + value->get<std::string>() + "]"
                               : std::string());
    }
    std::vector<std::string> out;
    for (std::size_t i = 0; i < value->size(); ++i) {
        const std::string item = yaml::child_pointer(pointer, std::to_string(i));
        const ordered_json& entry = (*value)[i];
        if (!entry.is_string()) {
            fail_at_value(item,
                          "entries of '" + key_name(pointer) + "' must be strings, not " +
                              describe_type(entry),
                          quoting_hint(entry));
        }
        out.push_back(string(item));
    }
    return out;
}

std::uint64_t FieldReader::limit_value(const std::string& pointer, const LimitField& field) const {
    const ordered_json& value = *find(pointer);
    const std::string name(field.key);
    if (value.is_boolean() || value.is_null() || value.is_array() || value.is_object()) {
        fail_at_value(pointer, "limit '" + name + "' must be " +
                                   (field.kind == LimitKind::count ? "an integer" : "a quantity") +
                                   ", not " + describe_type(value));
    }
    std::uint64_t result = 0;
    if (value.is_number()) {
        const bool whole = value.is_number_integer() || value.is_number_unsigned();
        if (whole && value.is_number_integer() && value.get<long long>() <= 0) {
            fail_at_value(pointer, "limit '" + name + "' must be positive, not " + value.dump());
        }
        if (field.kind == LimitKind::count || field.kind == LimitKind::duration) {
            if (!whole) {
                fail_at_value(pointer,
                              "limit '" + name + "' must be a whole number, not " + value.dump());
            }
            result = value.get<std::uint64_t>();
        } else {
            fail_at_value(pointer, "limit '" + name + "' needs a unit: write e.g. '" +
                                       value.dump() +
                                       (field.kind == LimitKind::size ? "MiB'" : "Mbit/s'"));
        }
    } else {
        const auto& text = value.get_ref<const std::string&>();
        if (field.kind == LimitKind::count) {
            fail_at_value(pointer, "limit '" + name + "' must be an integer, not a string",
                          "write it without quotes, e.g. " + name + ": 2");
        }
        try {
            switch (field.kind) {
            case LimitKind::size:
                result = parse_size(text);
                break;
            case LimitKind::duration:
                result = parse_duration(text);
                break;
            case LimitKind::rate:
                result = parse_rate(text);
                break;
            case LimitKind::count:
                break;
            }
        } catch (const UnitError& error) {
            fail_at_value(pointer, "limit '" + name + "': " + error.what());
        }
    }
    if (result == 0) {
        fail_at_value(pointer, "limit '" + name + "' must be greater than zero");
    }
    if (result < field.minimum) {
        fail_at_value(pointer, "limit '" + name + "' is below the minimum of " +
                                   (field.kind == LimitKind::size ? format_size(field.minimum)
                                                                  : std::to_string(field.minimum)));
    }
    if (field.kind == LimitKind::count && result > 256) {
        fail_at_value(pointer, "limit '" + name + "' is more than 256");
    }
    return result;
}

bool FieldReader::boolean(const std::string& pointer) const {
    const ordered_json* value = find(pointer);
    if (value == nullptr || !value->is_boolean()) {
        fail_at_value(pointer,
                      "'" + key_name(pointer) + "' must be true or false, not " +
                          describe_type(value ? *value : ordered_json()),
                      "write it without quotes: true or false");
    }
    return value->get<bool>();
}

Limits FieldReader::limits(const std::string& pointer, std::string_view what) const {
    check_mapping(pointer,
                  {"cpus", "memory", "disk", "cpu-time", "timeout", "network-rate",
                   "network-transfer", "log-size", "export-size"},
                  what);
    Limits out;
    for (const auto& field : limit_fields) {
        const std::string child = yaml::child_pointer(pointer, field.key);
        if (find(child) != nullptr) {
            out.*field.member = limit_value(child, field);
        }
    }
    return out;
}

policy::NetworkRule FieldReader::rule(const std::string& pointer) const {
    const ordered_json& value = *find(pointer);
    if (!value.is_object()) {
        fail_at_value(pointer, "a network rule must be a mapping such as "
                               "{host: deb.debian.org, protocol: https}, not " +
                                   describe_type(value));
    }
    check_mapping(pointer, {"host", "port", "protocol"}, "a network rule");
    require_key(pointer, "host", "a network rule");
    require_key(pointer, "protocol", "a network rule");
    policy::NetworkRule rule;
    const std::string host_pointer = yaml::child_pointer(pointer, "host");
    rule.host = string(host_pointer);
    std::transform(rule.host.begin(), rule.host.end(), rule.host.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (const auto problem = policy::host_problem(rule.host)) {
        fail_at_value(host_pointer, *problem);
    }
    const std::string protocol_pointer = yaml::child_pointer(pointer, "protocol");
    const std::string protocol = string(protocol_pointer);
    const auto parsed = policy::protocol_from_string(protocol);
    if (!parsed) {
        fail_at_value(protocol_pointer,
                      "unknown protocol " + util::quoted(protocol) + "; use http, https or tcp");
    }
    rule.protocol = *parsed;
    const std::string port_pointer = yaml::child_pointer(pointer, "port");
    if (const ordered_json* port = find(port_pointer)) {
        if (!port->is_number_integer() && !port->is_number_unsigned()) {
            fail_at_value(port_pointer, "'port' must be an integer, not " + describe_type(*port));
        }
        if (port->is_number_unsigned() || port->get<long long>() < 1 ||
            port->get<long long>() > 65535) {
            fail_at_value(port_pointer, "'port' must be between 1 and 65535, not " + port->dump());
        }
        rule.port = static_cast<std::uint16_t>(port->get<long long>());
    } else if (const auto port_default = policy::default_port(rule.protocol)) {
        rule.port = *port_default;
    } else {
        fail_at_value(pointer, "a tcp rule needs a port", "add e.g. 'port: 9418'");
    }
    if (rule.protocol == policy::Protocol::tcp && rule.host.starts_with("*.")) {
        // The worker reaches a tcp rule by its name, which its /etc/hosts maps to a forwarded
        // address: that needs one name, known before the build.
        fail_at_value(host_pointer, "a tcp rule needs one host name, not a wildcard",
                      "list each host the build connects to");
    }
    return rule;
}

std::vector<policy::NetworkRule> FieldReader::rules(const std::string& pointer) const {
    const ordered_json* value = find(pointer);
    if (value == nullptr || value->is_null()) {
        return {};
    }
    if (!value->is_array()) {
        fail_at_value(pointer, "'" + key_name(pointer) + "' must be a list of rules, not " +
                                   describe_type(*value));
    }
    std::vector<policy::NetworkRule> out;
    for (std::size_t i = 0; i < value->size(); ++i) {
        out.push_back(rule(yaml::child_pointer(pointer, std::to_string(i))));
    }
    return out;
}

policy::NetworkRules FieldReader::network(const std::string& pointer, bool config_keys) const {
    if (config_keys) {
        check_mapping(pointer, {"provision", "build", "on-violation", "spec-may-reach-host"},
                      "network");
    } else {
        check_mapping(pointer, {"provision", "build"}, "network");
    }
    return {rules(yaml::child_pointer(pointer, "provision")),
            rules(yaml::child_pointer(pointer, "build"))};
}

} // namespace contractor::spec

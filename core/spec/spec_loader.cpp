#include "spec/field_reader.hpp"
#include "spec/spec.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cctype>

namespace contractor::spec {
namespace {

using nlohmann::ordered_json;

// Debian package names (policy 5.6.1), optionally pinned to a version (=1.2-3) or a release
// (/bookworm-backports). Checking them here also keeps option-like words such as "-o" away from
// apt's command line.
bool is_package_name(std::string_view text) {
    const std::size_t end = text.find_first_of("=/");
    const std::string_view name = text.substr(0, end);
    if (name.size() < 2 || !(std::islower(static_cast<unsigned char>(name[0])) ||
                             std::isdigit(static_cast<unsigned char>(name[0])))) {
        return false;
    }
    const auto valid_name_char = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    };
    if (!std::all_of(name.begin(), name.end(), valid_name_char)) {
        return false;
    }
    if (end == std::string_view::npos) {
        return true;
    }
    const std::string_view suffix = text.substr(end + 1);
    const auto valid_suffix_char = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.' ||
               c == '~' || c == ':' || c == '_';
    };
    return !suffix.empty() && std::all_of(suffix.begin(), suffix.end(), valid_suffix_char);
}

bool is_environment_name(std::string_view name) {
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
}

std::vector<std::string> read_install(const FieldReader& reader) {
    std::vector<std::string> packages = reader.string_list("/install");
    for (std::size_t i = 0; i < packages.size(); ++i) {
        if (!is_package_name(packages[i])) {
            reader.fail_at_value("/install/" + std::to_string(i),
                                 util::quoted(packages[i]) + " is not a Debian package name",
                                 "names are lower-case letters, digits and + - . "
                                 "(optionally name=version or name/release)");
        }
    }
    return packages;
}

ordered_json read_ansible(const FieldReader& reader) {
    const ordered_json* playbook = reader.find("/ansible");
    if (playbook == nullptr || playbook->is_null()) {
        return ordered_json::array();
    }
    if (!playbook->is_array()) {
        reader.fail_at_value("/ansible",
                             "'ansible' must be a playbook: a list of plays, not " +
                                 FieldReader::describe_type(*playbook),
                             "start each play with '- hosts: worker'");
    }
    for (std::size_t i = 0; i < playbook->size(); ++i) {
        const ordered_json& play = (*playbook)[i];
        if (!play.is_object()) {
            reader.fail_at_value("/ansible/" + std::to_string(i),
                                 "each play in 'ansible' must be a mapping, not " +
                                     FieldReader::describe_type(play),
                                 "start each play with '- hosts: worker'");
        }
    }
    return *playbook;
}

void check_env(const FieldReader& reader, std::vector<std::pair<std::string, std::string>>& out) {
    const ordered_json* env = reader.find("/env");
    if (env == nullptr || env->is_null()) {
        return;
    }
    if (!env->is_object()) {
        reader.fail_at_value("/env", "'env' must be a mapping of variable names to values, not " +
                                         FieldReader::describe_type(*env));
    }
    for (const auto& duplicate : reader.duplicate_keys("/env")) {
        throw yaml::SourceError(reader.file(), duplicate.mark,
                                "environment variable " + duplicate.key + " is given twice");
    }
    for (const auto& [name, value] : env->items()) {
        const std::string pointer = yaml::child_pointer("/env", name);
        if (!is_environment_name(name)) {
            reader.fail_at_key(pointer,
                               util::quoted(name) + " is not a valid environment variable name",
                               "use letters, digits and '_', not starting with a digit");
        }
        if (value.is_string()) {
            out.emplace_back(name, value.get<std::string>());
        } else if (value.is_number_integer() || value.is_number_unsigned()) {
            out.emplace_back(name, value.dump());
        } else {
            reader.fail_at_value(pointer,
                                 "environment variable " + name + " must be a string, not " +
                                     FieldReader::describe_type(value),
                                 "put the value in quotes; YAML reads yes/no/on/off as booleans, "
                                 "1.10 as the number 1.1 and ~ as null");
        }
    }
}

// The source and the workspace, made absolute, must not be the same directory and the
// workspace must not contain the source: exporting it would copy the source into itself.
void check_paths(const FieldReader& reader, const BuildSpec& spec) {
    const auto source = absolute_path(spec.directory, spec.source);
    const auto workspace = absolute_path(spec.directory, spec.workspace);
    if (source == workspace) {
        reader.fail_at_value("/workspace", "the workspace must not be the source directory",
                             "name a separate directory, e.g. 'workspace: ws'");
    }
    const auto relative = source.lexically_relative(workspace);
    if (!relative.empty() && *relative.begin() != "..") {
        reader.fail_at_value("/workspace",
                             "the workspace " + util::quoted(workspace.string()) +
                                 " contains the source directory",
                             "put the workspace inside the source tree or beside it");
    }
}

} // namespace

std::filesystem::path absolute_path(const std::filesystem::path& directory,
                                    const std::string& value) {
    const std::filesystem::path joined = directory / value;
    std::error_code error;
    auto resolved = std::filesystem::weakly_canonical(joined, error);
    if (error) {
        resolved = joined;
    }
    // Normalised without a trailing '/', so that "dir/" and "dir" compare equal.
    resolved = resolved.lexically_normal();
    if (!resolved.has_filename() && resolved.has_relative_path()) {
        resolved = resolved.parent_path();
    }
    return resolved;
}

BuildSpec parse_spec(yaml::Document document, const std::filesystem::path& directory) {
    BuildSpec spec;
    spec.directory = directory;
    spec.document = std::move(document);
    const FieldReader reader(spec.document);
    const ordered_json& root = spec.document.value;
    if (root.is_null()) {
        reader.fail_at_value("", "the spec is empty",
                             "a spec needs at least worker-image, source, workspace and build");
    }
    if (!root.is_object()) {
        reader.fail_at_value("", "a spec must be a mapping of keys such as 'build:', not " +
                                     FieldReader::describe_type(root));
    }
    reader.check_mapping("",
                         {"worker-image", "source", "workspace", "build", "install", "ansible",
                          "exclude", "env", "limits", "network"},
                         "the spec");
    for (auto key : {"worker-image", "source", "workspace", "build"}) {
        reader.require_key("", key, "the spec");
    }
    spec.worker_image = reader.string("/worker-image");
    spec.source = reader.string("/source");
    spec.workspace = reader.string("/workspace");
    spec.build = reader.string("/build");
    spec.install = read_install(reader);
    spec.ansible = read_ansible(reader);
    spec.exclude = reader.string_list("/exclude");
    check_env(reader, spec.env);
    spec.limits = reader.limits("/limits");
    spec.network = reader.network("/network");
    check_paths(reader, spec);
    return spec;
}

BuildSpec load_spec(const std::string& path) {
    yaml::Document document = yaml::load_document(path);
    const auto directory = std::filesystem::absolute(path).parent_path();
    return parse_spec(std::move(document), directory);
}

} // namespace contractor::spec

#include "spec/effective.hpp"

#include "policy/policy_json.hpp"
#include "spec/ceilings.hpp"
#include "spec/field_reader.hpp"
#include "util/error.hpp"
#include "util/text.hpp"

#include <stdexcept>
#include <system_error>

namespace contractor::spec {
namespace {

using nlohmann::ordered_json;

// A worker-image value names a file when it looks like a path (a '/', or a disk-image
// extension) or a file of that name exists in `directory`; otherwise it is the name of an
// image in contractor's cache, such as the `worker` image `contractor image build` makes.
bool names_image_file(const std::filesystem::path& directory, const std::string& value) {
    const std::string extension = std::filesystem::path(value).extension().string();
    std::error_code error;
    return value.find('/') != std::string::npos || extension == ".img" || extension == ".qcow2" ||
           extension == ".raw" || std::filesystem::exists(directory / value, error);
}

// The way around a refused spec path, for its hint.
std::string path_hint(std::string_view key) {
    const std::string option = key == "worker-image" ? "--image FILE"
                               : key == "source"     ? "--source DIR"
                                                     : "--workspace DIR";
    return "if you mean it, give it on the command line with " + option +
           ", or allow a folder above it in your config with paths: {allow: [DIR]}";
}

// The spec's path at `key`, beneath its folder (or a root the config allows) and not through
// a symlink; otherwise an error at the key's value in the spec.
std::filesystem::path spec_path(const BuildSpec& spec, const UserConfig& config,
                                std::string_view key, const std::string& value) {
    try {
        return resolve_spec_path(spec.directory, value, config.allowed_path_roots);
    } catch (const PathError& error) {
        FieldReader(spec.document)
            .fail_at_value("/" + std::string(key),
                           std::string(key) + " " + util::quoted(value) + " " + error.what(),
                           path_hint(key));
    }
}

// The worker image: the command line's, else the spec's.
ImageReference resolve_image(const BuildSpec& spec, const UserConfig& config,
                             const PathOverrides& overrides, PathOrigins& origins) {
    if (overrides.worker_image) {
        origins.worker_image = PathOrigin::command_line;
        const std::string& value = *overrides.worker_image;
        if (names_image_file(overrides.current_directory, value)) {
            return {ImageReference::Kind::file,
                    absolute_path(overrides.current_directory, value).string()};
        }
        return {ImageReference::Kind::cached, value};
    }
    if (names_image_file(spec.directory, spec.worker_image)) {
        return {ImageReference::Kind::file,
                spec_path(spec, config, "worker-image", spec.worker_image).string()};
    }
    return {ImageReference::Kind::cached, spec.worker_image};
}

// `path` with the symlinks of its existing part resolved, to compare folders by what they are.
std::filesystem::path physical(const std::filesystem::path& path) {
    std::error_code error;
    const auto resolved = std::filesystem::weakly_canonical(path, error);
    return error ? path : resolved.lexically_normal();
}

// The source and the workspace must not be the same folder and the workspace must not contain
// the source: exporting it would copy the source into itself. The spec's own values were
// checked when it was read; this catches a command line that makes them collide.
void check_source_and_workspace(const std::filesystem::path& source,
                                const std::filesystem::path& workspace) {
    const auto relative = physical(source).lexically_relative(physical(workspace));
    if (relative.empty() || *relative.begin() == "..") {
        return;
    }
    throw UsageError(
        "the workspace " + workspace.string() +
            (relative == "." ? " is the source folder" : " contains the source folder"),
        "name a separate workspace, e.g. a folder beside the source");
}

} // namespace

std::string_view to_string(ValueOrigin origin) {
    switch (origin) {
    case ValueOrigin::builtin:
        return "default";
    case ValueOrigin::config:
        return "config";
    case ValueOrigin::spec:
        return "spec";
    }
    return "?";
}

const EffectiveLimit& EffectiveSpec::limit(std::string_view key) const {
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        if (limit_fields[i].key == key) {
            return limits[i];
        }
    }
    throw std::out_of_range("no limit named " + std::string(key));
}

EffectiveSpec resolve(const BuildSpec& spec, const UserConfig& config,
                      const PathOverrides& overrides) {
    PathOverrides given = overrides;
    const bool overridden = given.worker_image || given.source || given.workspace;
    if (overridden && given.current_directory.empty()) {
        given.current_directory = std::filesystem::current_path();
    }
    EffectiveSpec out;
    out.directory = spec.directory;
    out.config_file = config.file;
    out.worker_image = resolve_image(spec, config, given, out.path_origins);
    if (given.source) {
        out.source = absolute_path(given.current_directory, *given.source);
        out.path_origins.source = PathOrigin::command_line;
    } else {
        out.source = spec_path(spec, config, "source", spec.source);
    }
    if (given.workspace) {
        out.workspace = absolute_path(given.current_directory, *given.workspace);
        out.path_origins.workspace = PathOrigin::command_line;
    } else {
        out.workspace = spec_path(spec, config, "workspace", spec.workspace);
    }
    check_source_and_workspace(out.source, out.workspace);
    const auto inside = physical(out.workspace).lexically_relative(physical(out.source));
    if (!inside.empty() && *inside.begin() != "..") {
        out.workspace_in_source = inside;
    }
    out.build = spec.build;
    out.install = spec.install;
    out.ansible = spec.ansible;
    out.exclude = spec.exclude;
    out.env = spec.env;
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        const auto& field = limit_fields[i];
        const auto& ceiling = config.ceilings.*field.member;
        if (const auto& value = spec.limits.*field.member) {
            out.limits[i] = {*value, ValueOrigin::spec};
        } else if (const auto& configured = config.limits.*field.member) {
            out.limits[i] = {*configured, ValueOrigin::config};
        } else if (ceiling && *ceiling < field.builtin_default) {
            // The user's ceiling holds for the defaults too.
            out.limits[i] = {*ceiling, ValueOrigin::config};
        } else {
            out.limits[i] = {field.builtin_default, ValueOrigin::builtin};
        }
    }
    out.network = policy::merge_policy(config.network, spec.network);
    enforce_ceilings(spec, config, out.network);
    return out;
}

ordered_json to_json(const EffectiveSpec& effective) {
    ordered_json limits = ordered_json::object();
    for (std::size_t i = 0; i < limit_fields.size(); ++i) {
        limits[std::string(limit_fields[i].key)] = {
            {"value", effective.limits[i].value},
            {"unit", base_unit(limit_fields[i].kind)},
            {"from", to_string(effective.limits[i].origin)}};
    }
    ordered_json env = ordered_json::object();
    for (const auto& [name, value] : effective.env) {
        env[name] = value;
    }
    const bool cached = effective.worker_image.kind == ImageReference::Kind::cached;
    return {
        {"config", effective.config_file ? ordered_json(effective.config_file->string())
                                         : ordered_json(nullptr)},
        {"worker-image", {{cached ? "cached" : "file", effective.worker_image.value}}},
        {"source", effective.source.string()},
        {"workspace", effective.workspace.string()},
        {"paths-from",
         {{"worker-image", to_string(effective.path_origins.worker_image)},
          {"source", to_string(effective.path_origins.source)},
          {"workspace", to_string(effective.path_origins.workspace)}}},
        {"workspace-in-source", effective.workspace_in_source
                                    ? ordered_json(effective.workspace_in_source->string())
                                    : ordered_json(nullptr)},
        {"build", effective.build},
        {"install", effective.install},
        {"ansible", effective.ansible},
        {"exclude", effective.exclude},
        {"env", env},
        {"limits", limits},
        {"network", policy::policy_json(effective.network)},
    };
}

} // namespace contractor::spec

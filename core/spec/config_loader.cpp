#include "spec/ceilings.hpp"
#include "spec/config.hpp"
#include "spec/field_reader.hpp"
#include "util/text.hpp"

#include <system_error>

namespace contractor::spec {

std::optional<std::filesystem::path> default_config_path(const ConfigLocation& location) {
    // The XDG base directory spec says a relative XDG_CONFIG_HOME is invalid and to be ignored.
    if (location.xdg_config_home && !location.xdg_config_home->empty() &&
        location.xdg_config_home->front() == '/') {
        return std::filesystem::path(*location.xdg_config_home) / "contractor" / "config.yaml";
    }
    if (location.home && !location.home->empty()) {
        return std::filesystem::path(*location.home) / ".config" / "contractor" / "config.yaml";
    }
    return std::nullopt;
}

namespace {

// The `manager:` mapping. Sizes are written like limits (4GiB); the manager needs room for its
// own services besides the workers, hence the minimums.
ManagerConfig read_manager(const FieldReader& reader) {
    ManagerConfig manager;
    if (reader.find("/manager") == nullptr) {
        return manager;
    }
    reader.check_mapping("/manager", {"connect", "memory", "cpus", "disk"}, "manager");
    if (reader.find("/manager/connect") != nullptr) {
        manager.connect = reader.string("/manager/connect");
    }
    static constexpr LimitField memory{"memory",   nullptr, LimitKind::size,
                                       1ULL << 30, 0,       "manager RAM"};
    static constexpr LimitField cpus{"cpus", nullptr, LimitKind::count, 1, 0, "manager vCPUs"};
    static constexpr LimitField disk{"disk",     nullptr, LimitKind::size,
                                     8ULL << 30, 0,       "manager disk"};
    if (reader.find("/manager/memory") != nullptr) {
        manager.memory = reader.limit_value("/manager/memory", memory);
    }
    if (reader.find("/manager/cpus") != nullptr) {
        manager.cpus = reader.limit_value("/manager/cpus", cpus);
    }
    if (reader.find("/manager/disk") != nullptr) {
        manager.disk = reader.limit_value("/manager/disk", disk);
    }
    return manager;
}

// `ceilings:` and `spec-rules:`, what a spec may ask for at most. The config's own limits must
// fit under its ceilings: a config that contradicts itself is named where it does.
void read_ceilings(const FieldReader& reader, UserConfig& config) {
    config.ceilings = reader.limits("/ceilings", "ceilings");
    for (const auto& field : limit_fields) {
        const auto& limit = config.limits.*field.member;
        const auto& ceiling = config.ceilings.*field.member;
        if (limit && ceiling && *limit > *ceiling) {
            const std::string key(field.key);
            reader.fail_at_value(yaml::child_pointer("/limits", field.key),
                                 "limit '" + key + "' (" + format_limit(field, *limit) +
                                     ") is above your ceiling for it (" +
                                     format_limit(field, *ceiling) + ")",
                                 "lower it, or raise ceilings: {" + key + ": ...}");
        }
    }
    if (reader.find("/spec-rules") != nullptr) {
        const std::string rules = reader.string("/spec-rules");
        if (rules == "allow") {
            config.spec_rules = SpecRules::allow;
        } else if (rules == "deny") {
            config.spec_rules = SpecRules::deny;
        } else {
            reader.fail_at_value("/spec-rules",
                                 "unknown value " + util::quoted(rules) + " for 'spec-rules'",
                                 "use allow (a spec may add network rules) or deny");
        }
    }
}

// `paths: {allow: [DIR, ...]}`: folders a spec's paths may also lie under. Absolute, because
// a relative root would depend on where contractor happens to run.
void read_paths(const FieldReader& reader, UserConfig& config) {
    reader.check_mapping("/paths", {"allow"}, "paths");
    const std::vector<std::string> roots = reader.string_list("/paths/allow");
    for (std::size_t i = 0; i < roots.size(); ++i) {
        const std::filesystem::path root(roots[i]);
        if (!root.is_absolute()) {
            reader.fail_at_value("/paths/allow/" + std::to_string(i),
                                 "the folders in paths.allow must be absolute, not " +
                                     util::quoted(roots[i]),
                                 "write the full path, e.g. /home/you/builds");
        }
        config.allowed_path_roots.push_back(root.lexically_normal());
    }
}

// `export: {allow-git: true}`.
void read_export(const FieldReader& reader, UserConfig& config) {
    reader.check_mapping("/export", {"allow-git"}, "export");
    if (reader.find("/export/allow-git") != nullptr) {
        config.export_allow_git = reader.boolean("/export/allow-git");
    }
}

// `logs: {keep: 100, max-age: 30d}`.
void read_logs(const FieldReader& reader, UserConfig& config) {
    reader.check_mapping("/logs", {"keep", "max-age"}, "logs");
    static constexpr LimitField keep{"keep", nullptr, LimitKind::count, 1, 0, "build logs kept"};
    static constexpr LimitField max_age{"max-age", nullptr, LimitKind::duration,
                                        1,         0,       "age of the oldest build log kept"};
    if (reader.find("/logs/keep") != nullptr) {
        config.logs.keep = reader.limit_value("/logs/keep", keep);
    }
    if (reader.find("/logs/max-age") != nullptr) {
        config.logs.max_age_seconds = reader.limit_value("/logs/max-age", max_age);
    }
}

// `cache: {max-size: 20GiB, max-age: 7d}`.
void read_cache(const FieldReader& reader, UserConfig& config) {
    reader.check_mapping("/cache", {"max-size", "max-age"}, "cache");
    static constexpr LimitField max_size{
        "max-size", nullptr, LimitKind::size, 0, 0, "size of all provisioned layers together"};
    static constexpr LimitField max_age{
        "max-age", nullptr, LimitKind::duration,
        1,         0,       "age of the oldest provisioned layer reused"};
    if (const auto* size = reader.find("/cache/max-size"); size != nullptr) {
        // 0 (a plain number, no unit): no layer is kept or used.
        const bool zero = size->is_number_integer() && size->get<long long>() == 0;
        config.cache.max_size = zero ? 0 : reader.limit_value("/cache/max-size", max_size);
    }
    if (reader.find("/cache/max-age") != nullptr) {
        config.cache.max_age_seconds = reader.limit_value("/cache/max-age", max_age);
    }
}

// `pool: 1` (0 turns ready workers off) and `pool-idle: 15m`.
void read_pool(const FieldReader& reader, UserConfig& config) {
    if (const auto* size = reader.find("/pool"); size != nullptr) {
        if (!size->is_number_integer() || size->get<long long>() < 0 ||
            size->get<long long>() > 1) {
            reader.fail_at_value("/pool", "'pool' must be 0 or 1",
                                 "1 keeps a ready worker for the next build like the last one, "
                                 "0 boots a worker for every build");
        }
        config.pool.size = size->get<std::uint64_t>();
    }
    static constexpr LimitField idle{
        "pool-idle", nullptr, LimitKind::duration,
        1,           0,       "how long a ready worker waits for a build"};
    if (reader.find("/pool-idle") != nullptr) {
        config.pool.idle_seconds = reader.limit_value("/pool-idle", idle);
    }
}

} // namespace

UserConfig load_user_config(const ConfigLocation& location) {
    std::optional<std::filesystem::path> path;
    if (location.explicit_file) {
        path = *location.explicit_file;
    } else if (auto candidate = default_config_path(location)) {
        std::error_code error;
        if (std::filesystem::exists(*candidate, error)) {
            path = *candidate;
        }
    }
    UserConfig config;
    if (!path) {
        return config;
    }
    const yaml::Document document = yaml::load_document(path->string());
    const FieldReader reader(document);
    if (!document.value.is_null()) {
        reader.check_mapping("",
                             {"limits", "network", "accel", "proxy", "manager", "ceilings",
                              "spec-rules", "paths", "export", "logs", "cache", "pool", "pool-idle",
                              "max-workers"},
                             "the config");
        config.manager = read_manager(reader);
        if (reader.find("/proxy") != nullptr) {
            config.proxy = reader.string("/proxy");
            if (config.proxy->rfind("http://", 0) != 0) {
                reader.fail_at_value("/proxy", "the proxy must be an http:// URL",
                                     "e.g. http://host.contractor.internal:3142 for apt-cacher-ng");
            }
        }
        if (reader.find("/accel") != nullptr) {
            config.accel = reader.string("/accel");
            if (config.accel != "auto" && config.accel != "kvm" && config.accel != "tcg") {
                reader.fail_at_value("/accel", "unknown accelerator '" + config.accel + "'",
                                     "use auto, kvm or tcg");
            }
        }
        config.limits = reader.limits("/limits");
        read_ceilings(reader, config);
        read_paths(reader, config);
        read_export(reader, config);
        if (reader.find("/logs") != nullptr) {
            read_logs(reader, config);
        }
        if (reader.find("/cache") != nullptr) {
            read_cache(reader, config);
        }
        read_pool(reader, config);
        static constexpr LimitField max_workers{"max-workers",   nullptr, LimitKind::count, 1, 0,
                                                "builds at once"};
        if (reader.find("/max-workers") != nullptr) {
            config.max_workers = reader.limit_value("/max-workers", max_workers);
        }
        const policy::NetworkRules rules = reader.network("/network", true);
        if (reader.find("/network/on-violation") != nullptr) {
            const std::string value = reader.string("/network/on-violation");
            if (value != "fail" && value != "warn") {
                reader.fail_at_value("/network/on-violation",
                                     "unknown value " + util::quoted(value) + " for 'on-violation'",
                                     "use fail (a refused attempt stops the build, exit 3) or "
                                     "warn (it is reported and the build goes on)");
            }
            config.on_violation = value == "warn" ? OnViolation::warn : OnViolation::fail;
        }
        if (reader.find("/network/spec-may-reach-host") != nullptr) {
            config.spec_may_reach_host = reader.boolean("/network/spec-may-reach-host");
        }
        if (reader.find("/network/provision") != nullptr) {
            config.network.provision = policy::tag_rules(rules.provision, policy::Origin::config);
        }
        if (reader.find("/network/build") != nullptr) {
            config.network.build = policy::tag_rules(rules.build, policy::Origin::config);
        }
    }
    config.file = std::filesystem::absolute(*path);
    return config;
}

} // namespace contractor::spec

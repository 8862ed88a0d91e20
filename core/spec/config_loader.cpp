#include "spec/config.hpp"
#include "spec/field_reader.hpp"

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
        reader.check_mapping("", {"limits", "network", "accel", "proxy", "manager"}, "the config");
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
        const policy::NetworkRules rules = reader.network("/network");
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

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
        reader.check_mapping("", {"limits", "network", "accel", "proxy"}, "the config");
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

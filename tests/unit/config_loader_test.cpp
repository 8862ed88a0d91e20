// Tests for spec/config.hpp: where the user config is found and how it is read.
#include "spec/config.hpp"
#include "temporary_directory.hpp"
#include "yaml/source_error.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::spec::ConfigLocation;
using contractor::spec::default_config_path;
using contractor::spec::load_user_config;
using contractor::spec::UserConfig;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

// The SourceError load_user_config throws, as its what().
std::string error_of(const ConfigLocation& location) {
    try {
        load_user_config(location);
    } catch (const yaml::SourceError& error) {
        return error.what();
    }
    FAIL("no SourceError");
    return {};
}

} // namespace

TEST_CASE("default_config_path follows the XDG base directory spec", "[config]") {
    SECTION("an absolute XDG_CONFIG_HOME") {
        CHECK(default_config_path({"/xdg", "/home/u", std::nullopt}) ==
              fs::path("/xdg/contractor/config.yaml"));
    }
    SECTION("a relative XDG_CONFIG_HOME is ignored") {
        CHECK(default_config_path({"relative/xdg", "/home/u", std::nullopt}) ==
              fs::path("/home/u/.config/contractor/config.yaml"));
    }
    SECTION("an empty XDG_CONFIG_HOME is ignored") {
        CHECK(default_config_path({"", "/home/u", std::nullopt}) ==
              fs::path("/home/u/.config/contractor/config.yaml"));
    }
    SECTION("without XDG_CONFIG_HOME, HOME/.config") {
        CHECK(default_config_path({std::nullopt, "/home/u", std::nullopt}) ==
              fs::path("/home/u/.config/contractor/config.yaml"));
    }
    SECTION("neither: no default") {
        CHECK_FALSE(default_config_path({std::nullopt, std::nullopt, std::nullopt}).has_value());
        CHECK_FALSE(default_config_path({"relative", "", std::nullopt}).has_value());
    }
    SECTION("--config does not change the default") {
        CHECK(default_config_path({"/xdg", std::nullopt, "/etc/c.yaml"}) ==
              fs::path("/xdg/contractor/config.yaml"));
    }
}

TEST_CASE("no config file: built-in defaults only", "[config]") {
    const TemporaryDirectory directory;
    const UserConfig config =
        load_user_config({directory.path().string(), std::nullopt, std::nullopt});
    CHECK_FALSE(config.file.has_value());
    CHECK_FALSE(config.limits.cpus.has_value());
    CHECK_FALSE(config.limits.memory.has_value());
    CHECK_FALSE(config.limits.timeout.has_value());
    // The built-in base policy: Debian's mirrors while provisioning, nothing for the build.
    REQUIRE(config.network.provision.size() == 3);
    CHECK(config.network.provision[0].rule ==
          policy::NetworkRule{"deb.debian.org", 80, policy::Protocol::http});
    CHECK(config.network.provision[0].origin == policy::Origin::builtin);
    CHECK(config.network.build.empty());

    const UserConfig nowhere = load_user_config({std::nullopt, std::nullopt, std::nullopt});
    CHECK_FALSE(nowhere.file.has_value());
}

TEST_CASE("the config file under XDG_CONFIG_HOME is read", "[config]") {
    const TemporaryDirectory directory;
    const fs::path file = directory.write("contractor/config.yaml",
                                          "limits:\n  cpus: 4\n  memory: 4GiB\n  timeout: 2h\n"
                                          "network:\n  provision:\n    - host: deb.debian.org\n"
                                          "      protocol: http\n");
    const UserConfig config =
        load_user_config({directory.path().string(), "/nonexistent-home", std::nullopt});
    CHECK(config.file == file);
    CHECK(config.limits.cpus == 4u);
    CHECK(config.limits.memory == 4 * spec::GiB);
    CHECK(config.limits.timeout == 7200u);
    CHECK_FALSE(config.limits.disk.has_value());
    // A phase the config names replaces the built-in rules of that phase.
    REQUIRE(config.network.provision.size() == 1);
    CHECK(config.network.provision[0].rule ==
          policy::NetworkRule{"deb.debian.org", 80, policy::Protocol::http});
    CHECK(config.network.provision[0].origin == policy::Origin::config);
    CHECK(config.network.build.empty());
}

TEST_CASE("network: on-violation and spec-may-reach-host", "[config]") {
    const TemporaryDirectory directory;
    directory.write("contractor/config.yaml",
                    "network:\n  on-violation: warn\n  spec-may-reach-host: true\n");
    const UserConfig config =
        load_user_config({directory.path().string(), "/nonexistent-home", std::nullopt});
    CHECK(config.on_violation == spec::OnViolation::warn);
    CHECK(config.spec_may_reach_host);
    CHECK(config.network.provision.size() == policy::builtin_base_policy().provision.size());

    const UserConfig defaults;
    CHECK(defaults.on_violation == spec::OnViolation::fail);
    CHECK_FALSE(defaults.spec_may_reach_host);

    directory.write("contractor/config.yaml", "network:\n  on-violation: ignore\n");
    CHECK_THROWS_WITH(
        load_user_config({directory.path().string(), "/nonexistent-home", std::nullopt}),
        Catch::Matchers::Contains("unknown value 'ignore' for 'on-violation'"));
}

TEST_CASE("a phase the config does not name keeps the built-in rules", "[config]") {
    const TemporaryDirectory directory;
    SECTION("only build rules") {
        const fs::path file = directory.write(
            "config.yaml", "network:\n  build:\n    - {host: crates.io, protocol: https}\n"
                           "    - {host: crates.io, protocol: https}\n");
        const UserConfig config = load_user_config({std::nullopt, std::nullopt, file.string()});
        REQUIRE(config.network.provision.size() == 3);
        CHECK(config.network.provision[2].rule ==
              policy::NetworkRule{"security.debian.org", 80, policy::Protocol::http});
        CHECK(config.network.provision[2].origin == policy::Origin::builtin);
        REQUIRE(config.network.build.size() == 1);
        CHECK(config.network.build[0].rule ==
              policy::NetworkRule{"crates.io", 443, policy::Protocol::https});
        CHECK(config.network.build[0].origin == policy::Origin::config);
    }
    SECTION("an empty provision list allows nothing") {
        const fs::path file = directory.write("config.yaml", "network:\n  provision: []\n");
        const UserConfig config = load_user_config({std::nullopt, std::nullopt, file.string()});
        CHECK(config.network.provision.empty());
    }
    SECTION("an empty network mapping changes nothing") {
        const fs::path file = directory.write("config.yaml", "network:\n");
        const UserConfig config = load_user_config({std::nullopt, std::nullopt, file.string()});
        CHECK(config.network.provision.size() == 3);
    }
}

TEST_CASE("the config file under HOME is read without XDG_CONFIG_HOME", "[config]") {
    const TemporaryDirectory home;
    const fs::path file = home.write(".config/contractor/config.yaml", "limits: {cpus: 3}\n");
    const UserConfig config = load_user_config({std::nullopt, home.path().string(), std::nullopt});
    CHECK(config.file == file);
    CHECK(config.limits.cpus == 3u);
}

TEST_CASE("with XDG_CONFIG_HOME set, a file under HOME is not used", "[config]") {
    const TemporaryDirectory home;
    home.write(".config/contractor/config.yaml", "limits: {cpus: 3}\n");
    const TemporaryDirectory xdg;
    const UserConfig config =
        load_user_config({xdg.path().string(), home.path().string(), std::nullopt});
    CHECK_FALSE(config.file.has_value());
    CHECK_FALSE(config.limits.cpus.has_value());
}

TEST_CASE("an explicit config file wins over the default one", "[config]") {
    const TemporaryDirectory directory;
    directory.write("xdg/contractor/config.yaml", "limits: {cpus: 3}\n");
    const fs::path explicit_file = directory.write("mine.yaml", "limits: {cpus: 5}\n");
    const UserConfig config = load_user_config(
        {(directory.path() / "xdg").string(), std::nullopt, explicit_file.string()});
    CHECK(config.file == explicit_file);
    CHECK(config.limits.cpus == 5u);
}

TEST_CASE("an explicit config file must exist", "[config]") {
    const TemporaryDirectory directory;
    const std::string missing = (directory.path() / "missing.yaml").string();
    REQUIRE_THROWS_AS(load_user_config({std::nullopt, std::nullopt, missing}), UsageError);
    REQUIRE_THROWS_WITH(load_user_config({std::nullopt, std::nullopt, missing}),
                        missing + ": cannot read: No such file or directory");
}

TEST_CASE("an empty config file is the built-in defaults, from that file", "[config]") {
    const TemporaryDirectory directory;
    const fs::path file = directory.write("contractor/config.yaml", "# nothing yet\n");
    const UserConfig config =
        load_user_config({directory.path().string(), std::nullopt, std::nullopt});
    CHECK(config.file == file);
    CHECK_FALSE(config.limits.cpus.has_value());
    CHECK(config.network.provision.size() == 3);
}

TEST_CASE("problems in the config file are located in it", "[config]") {
    const TemporaryDirectory directory;
    const auto located = [&](const std::string& text) {
        const fs::path file = directory.write("config.yaml", text);
        const std::string what = error_of({std::nullopt, std::nullopt, file.string()});
        REQUIRE(what.starts_with(file.string() + ":"));
        return what.substr(file.string().size() + 1);
    };
    CHECK(located("# c\nlimit:\n  cpus: 2\n") ==
          "2:1: unknown key 'limit' in the config (did you mean 'limits'?)");
    CHECK(located("build: make\n") == "1:1: unknown key 'build' in the config");
    CHECK(located("network:\n  provision:\n    - host: deb.debian.org\n      protocol: gopher\n") ==
          "4:17: unknown protocol 'gopher'; use http, https or tcp");
    CHECK(located("limits:\n  memory: 1\n") ==
          "2:11: limit 'memory' needs a unit: write e.g. '1MiB'");
    CHECK(located("limits:\n  cpus: 2\n  cpus: 3\n") == "3:3: key 'cpus' is given twice in limits");
    CHECK(located("[limits]\n") == "1:1: the config must be a mapping, not a list");
    CHECK(located("limits: {cpus: 2\n") == "2:1: end of map flow not found");
}

TEST_CASE("the manager section sets the manager VM's URI and size", "[config]") {
    const TemporaryDirectory directory;
    SECTION("absent: session libvirt's default, 4 GiB, 2 vCPUs, 32 GiB") {
        directory.write("contractor/config.yaml", "accel: tcg\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.manager.connect.empty());
        CHECK(config.manager.memory == 4 * spec::GiB);
        CHECK(config.manager.cpus == 2u);
        CHECK(config.manager.disk == 32 * spec::GiB);
    }
    SECTION("given") {
        directory.write("contractor/config.yaml",
                        "manager:\n  connect: qemu:///system\n  memory: 6GiB\n  cpus: 3\n"
                        "  disk: 40GiB\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.manager.connect == "qemu:///system");
        CHECK(config.manager.memory == 6 * spec::GiB);
        CHECK(config.manager.cpus == 3u);
        CHECK(config.manager.disk == 40 * spec::GiB);
    }
    SECTION("a typo is named with its place and a suggestion") {
        directory.write("contractor/config.yaml", "manager:\n  memroy: 6GiB\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}),
                   Contains("config.yaml:2:3") && Contains("did you mean 'memory'"));
    }
    SECTION("too little memory for the manager's own services") {
        directory.write("contractor/config.yaml", "manager:\n  memory: 256MiB\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:2:11"));
    }
}

TEST_CASE("logs: how many build logs are kept, and how long", "[config]") {
    const TemporaryDirectory directory;
    SECTION("absent: the newest 100, none older than 30 days") {
        directory.write("contractor/config.yaml", "accel: tcg\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.logs.keep == 100u);
        CHECK(config.logs.max_age_seconds == 30u * 86400);
    }
    SECTION("given") {
        directory.write("contractor/config.yaml", "logs:\n  keep: 5\n  max-age: 2d\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.logs.keep == 5u);
        CHECK(config.logs.max_age_seconds == 2u * 86400);
    }
    SECTION("zero is refused where it is written") {
        directory.write("contractor/config.yaml", "logs:\n  keep: 0\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:2:9"));
    }
}

TEST_CASE("ceilings and spec-rules cap what a spec may ask for", "[config]") {
    const TemporaryDirectory directory;
    SECTION("absent: no ceilings, spec rules allowed") {
        directory.write("contractor/config.yaml", "limits: {cpus: 2}\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK_FALSE(config.ceilings.cpus.has_value());
        CHECK(config.spec_rules == spec::SpecRules::allow);
    }
    SECTION("given, in the units of limits") {
        directory.write("contractor/config.yaml",
                        "ceilings: {cpus: 2, memory: 4GiB, cpu-time: 1h, network-rate: 10Mbit/s}\n"
                        "spec-rules: deny\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.ceilings.cpus == 2u);
        CHECK(config.ceilings.memory == 4 * spec::GiB);
        CHECK(config.ceilings.cpu_time == 3600u);
        CHECK(config.ceilings.network_rate == 1'250'000u);
        CHECK_FALSE(config.ceilings.disk.has_value());
        CHECK(config.spec_rules == spec::SpecRules::deny);
    }
    SECTION("problems are located") {
        const auto located = [&](const std::string& text) {
            const fs::path file = directory.write("config.yaml", text);
            const std::string what = error_of({std::nullopt, std::nullopt, file.string()});
            REQUIRE(what.starts_with(file.string() + ":"));
            return what.substr(file.string().size() + 1);
        };
        CHECK(located("ceilings:\n  memroy: 4GiB\n") ==
              "2:3: unknown key 'memroy' in ceilings (did you mean 'memory'?)");
        CHECK(located("ceilings: {memory: 4}\n") ==
              "1:20: limit 'memory' needs a unit: write e.g. '4MiB'");
        CHECK(located("ceilings: 2\n") == "1:11: ceilings must be a mapping, not an integer (2)");
        CHECK(located("spec-rules: maybe\n") == "1:13: unknown value 'maybe' for 'spec-rules'");
        CHECK(located("spec-rules: no\n") ==
              "1:13: 'spec-rules' must be a string, not a boolean (false)");
        // The config's own limits must fit under its ceilings.
        CHECK(located("limits: {cpus: 4}\nceilings: {cpus: 2}\n") ==
              "1:16: limit 'cpus' (4) is above your ceiling for it (2)");
    }
}

TEST_CASE("paths.allow lists absolute folders a spec's paths may also use", "[config]") {
    const TemporaryDirectory directory;
    SECTION("given") {
        directory.write("contractor/config.yaml",
                        "paths:\n  allow: [/srv/builds, /home/u/shared/]\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.allowed_path_roots == std::vector<fs::path>{"/srv/builds", "/home/u/shared/"});
    }
    SECTION("absent or empty") {
        directory.write("contractor/config.yaml", "paths:\n");
        CHECK(load_user_config({directory.path().string(), {}, {}}).allowed_path_roots.empty());
    }
    SECTION("problems are located") {
        const auto located = [&](const std::string& text) {
            const fs::path file = directory.write("config.yaml", text);
            const std::string what = error_of({std::nullopt, std::nullopt, file.string()});
            return what.substr(file.string().size() + 1);
        };
        CHECK(located("paths:\n  allow: [/srv, builds]\n") ==
              "2:17: the folders in paths.allow must be absolute, not 'builds'");
        CHECK(located("paths:\n  allow: /srv\n") == "2:10: 'allow' must be a list, not a string");
        CHECK(located("paths:\n  alow: [/srv]\n") ==
              "2:3: unknown key 'alow' in paths (did you mean 'allow'?)");
    }
}

TEST_CASE("export.allow-git is a boolean, off by default", "[config]") {
    const TemporaryDirectory directory;
    directory.write("contractor/config.yaml", "accel: tcg\n");
    CHECK_FALSE(load_user_config({directory.path().string(), {}, {}}).export_allow_git);
    directory.write("contractor/config.yaml", "export: {allow-git: true}\n");
    CHECK(load_user_config({directory.path().string(), {}, {}}).export_allow_git);
    directory.write("contractor/config.yaml", "export:\n  allow-git: no\n");
    CHECK_FALSE(load_user_config({directory.path().string(), {}, {}}).export_allow_git);

    const fs::path file = directory.write("bad.yaml", "export: {allow-git: 'true'}\n");
    CHECK_THAT(error_of({std::nullopt, std::nullopt, file.string()}),
               Contains("bad.yaml:1:21: 'allow-git' must be true or false, not a string"));
    const fs::path typo = directory.write("typo.yaml", "export: {allow_git: true}\n");
    CHECK_THAT(error_of({std::nullopt, std::nullopt, typo.string()}),
               Contains("typo.yaml:1:10: unknown key 'allow_git' in export"));
}

TEST_CASE("cache: the provisioned layers' size cap and age", "[config]") {
    const TemporaryDirectory directory;
    SECTION("absent: 20 GiB, 7 days") {
        directory.write("contractor/config.yaml", "accel: tcg\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.cache.max_size == 20ULL << 30);
        CHECK(config.cache.max_age_seconds == 7u * 86400);
    }
    SECTION("given") {
        directory.write("contractor/config.yaml", "cache:\n  max-size: 5GiB\n  max-age: 12h\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.cache.max_size == 5ULL << 30);
        CHECK(config.cache.max_age_seconds == 12u * 3600);
    }
    SECTION("max-size 0 keeps no layer") {
        directory.write("contractor/config.yaml", "cache:\n  max-size: 0\n");
        CHECK(load_user_config({directory.path().string(), {}, {}}).cache.max_size == 0u);
    }
    SECTION("an unknown key or a bad size is refused where it is written") {
        directory.write("contractor/config.yaml", "cache:\n  layers: off\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:2"));
        directory.write("contractor/config.yaml", "cache:\n  max-size: lots\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:2"));
    }
}

TEST_CASE("pool, pool-idle and max-workers", "[config]") {
    const TemporaryDirectory directory;
    SECTION("absent: a ready worker for 15 minutes, two builds at once") {
        directory.write("contractor/config.yaml", "accel: tcg\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.pool.size == 1u);
        CHECK(config.pool.idle_seconds == 15u * 60);
        CHECK(config.max_workers == 2u);
    }
    SECTION("given") {
        directory.write("contractor/config.yaml", "pool: 0\npool-idle: 2m\nmax-workers: 3\n");
        const UserConfig config = load_user_config({directory.path().string(), {}, {}});
        CHECK(config.pool.size == 0u);
        CHECK(config.pool.idle_seconds == 120u);
        CHECK(config.max_workers == 3u);
    }
    SECTION("refused where it is written") {
        directory.write("contractor/config.yaml", "pool: 2\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:1:7"));
        directory.write("contractor/config.yaml", "max-workers: 0\n");
        CHECK_THAT(error_of({directory.path().string(), {}, {}}), Contains("config.yaml:1"));
    }
}

// Tests for spec/spec.hpp: the spec schema, its defaults and every located error.
#include "spec/spec.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

using namespace contractor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using contractor::spec::BuildSpec;
using contractor::test::TemporaryDirectory;
using contractor::yaml::SourceError;
using Json = nlohmann::ordered_json;

namespace {

// The directory the specs' relative paths start from.
const TemporaryDirectory spec_directory;

// The four keys every spec needs, for tests about the others.
const std::string required = "worker-image: worker.img\nsource: .\nworkspace: ws\nbuild: make\n";

BuildSpec parse(const std::string& text) {
    return spec::parse_spec(yaml::parse_document(text, "spec.yaml"), spec_directory.path());
}

// The error parse() throws, as "LINE:COLUMN: message".
std::string error_of(const std::string& text) {
    try {
        parse(text);
    } catch (const SourceError& error) {
        const std::string what = error.what();
        REQUIRE(what.starts_with("spec.yaml:"));
        return what.substr(std::string("spec.yaml:").size());
    }
    FAIL("no SourceError for:\n" << text);
    return {};
}

// The hint of the error parse() throws.
std::string hint_of(const std::string& text) {
    try {
        parse(text);
    } catch (const SourceError& error) {
        return error.hint();
    }
    FAIL("no SourceError for:\n" << text);
    return {};
}

} // namespace

TEST_CASE("a spec with every key", "[spec]") {
    const BuildSpec spec = parse(R"(worker-image: images/worker.qcow2
source: src
workspace: ws
build: |
  make
  make check
install:
  - gcc
  - libssl-dev=3.0.11-1~deb12u2
  - cmake/bookworm-backports
  - g++
ansible:
  - hosts: worker
    tasks:
      - apt: {name: git}
exclude: [".git", "build/*"]
env:
  CC: gcc
  JOBS: 4
  EMPTY: ""
limits:
  cpus: 2
  memory: 2GiB
  disk: 10G
  cpu-time: 1h
  timeout: 90
  network-rate: 10Mbit/s
  network-transfer: 500MB
  log-size: 1MiB
  export-size: 1GiB
network:
  provision:
    - host: deb.debian.org
      protocol: https
    - host: Git.Example.org
      port: 9418
      protocol: tcp
  build:
    - host: "*.pypi.org"
      protocol: http
)");
    CHECK(spec.directory == spec_directory.path());
    CHECK(spec.worker_image == "images/worker.qcow2");
    CHECK(spec.source == "src");
    CHECK(spec.workspace == "ws");
    CHECK(spec.build == "make\nmake check\n");
    CHECK(spec.install == std::vector<std::string>{"gcc", "libssl-dev=3.0.11-1~deb12u2",
                                                   "cmake/bookworm-backports", "g++"});
    CHECK(spec.ansible ==
          Json::parse(R"([{"hosts": "worker", "tasks": [{"apt": {"name": "git"}}]}])"));
    CHECK(spec.exclude == std::vector<std::string>{".git", "build/*"});
    using Env = std::vector<std::pair<std::string, std::string>>;
    CHECK(spec.env == Env{{"CC", "gcc"}, {"JOBS", "4"}, {"EMPTY", ""}});

    CHECK(spec.limits.cpus == 2u);
    CHECK(spec.limits.memory == 2 * spec::GiB);
    CHECK(spec.limits.disk == 10 * spec::GiB);
    CHECK(spec.limits.cpu_time == 3600u);
    CHECK(spec.limits.timeout == 90u);
    CHECK(spec.limits.network_rate == 1'250'000u);
    CHECK(spec.limits.network_transfer == 500'000'000u);
    CHECK(spec.limits.log_size == spec::MiB);
    CHECK(spec.limits.export_size == spec::GiB);

    REQUIRE(spec.network.provision.size() == 2);
    CHECK(spec.network.provision[0] ==
          policy::NetworkRule{"deb.debian.org", 443, policy::Protocol::https});
    // Host names are lower-cased.
    CHECK(spec.network.provision[1] ==
          policy::NetworkRule{"git.example.org", 9418, policy::Protocol::tcp});
    REQUIRE(spec.network.build.size() == 1);
    CHECK(spec.network.build[0] == policy::NetworkRule{"*.pypi.org", 80, policy::Protocol::http});

    // The document is kept whole, as `dump` prints it.
    CHECK(spec.document.file == "spec.yaml");
    CHECK(spec.document.value["limits"]["memory"] == "2GiB");
}

TEST_CASE("optional keys default to empty when absent", "[spec]") {
    const BuildSpec spec = parse(required);
    CHECK(spec.worker_image == "worker.img");
    CHECK(spec.source == ".");
    CHECK(spec.workspace == "ws");
    CHECK(spec.build == "make");
    CHECK(spec.install.empty());
    CHECK(spec.ansible == Json::array());
    CHECK(spec.exclude.empty());
    CHECK(spec.env.empty());
    CHECK_FALSE(spec.limits.cpus.has_value());
    CHECK_FALSE(spec.limits.memory.has_value());
    CHECK_FALSE(spec.limits.export_size.has_value());
    CHECK(spec.network.provision.empty());
    CHECK(spec.network.build.empty());
}

TEST_CASE("optional keys default to empty when null", "[spec]") {
    const BuildSpec spec = parse(required + "install:\nansible: ~\nexclude: null\nenv:\nlimits:\n"
                                            "network:\n  provision:\n  build: ~\n");
    CHECK(spec.install.empty());
    CHECK(spec.ansible == Json::array());
    CHECK(spec.exclude.empty());
    CHECK(spec.env.empty());
    CHECK_FALSE(spec.limits.timeout.has_value());
    CHECK(spec.network.provision.empty());
    CHECK(spec.network.build.empty());
}

TEST_CASE("the spec itself: empty, not a mapping, missing or unknown keys", "[spec]") {
    CHECK(error_of("# nothing\n") == "1:1: the spec is empty");
    CHECK(error_of("# c\n- build: make\n") ==
          "2:1: a spec must be a mapping of keys such as 'build:', not a list");
    CHECK(error_of("make\n") ==
          "1:1: a spec must be a mapping of keys such as 'build:', not a string");
    CHECK(error_of("# c\nworker-image: w.img\nsource: .\nworkspace: ws\ninstall: [gcc]\n") ==
          "2:1: missing required key 'build' in the spec");
    CHECK(error_of("worker-image: w.img\nsource: .\nbuild: make\n") ==
          "1:1: missing required key 'workspace' in the spec");
    CHECK(error_of(required + "biuld: make\n") ==
          "5:1: unknown key 'biuld' in the spec (did you mean 'build'?)");
    CHECK(hint_of(required + "biuld: make\n") ==
          "valid keys: worker-image, source, workspace, build, install, ansible, exclude, env, "
          "limits, network");
    CHECK(error_of(required + "compiler: gcc\n") == "5:1: unknown key 'compiler' in the spec");
    CHECK(error_of(required + "build: make check\n") ==
          "5:1: key 'build' is given twice in the spec");
}

TEST_CASE("required keys must be non-empty strings", "[spec]") {
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: ws\nbuild: [make, check]\n") ==
          "4:8: 'build' must be a string, not a list");
    CHECK(error_of("worker-image: 12\nsource: .\nworkspace: ws\nbuild: make\n") ==
          "1:15: 'worker-image' must be a string, not an integer (12)");
    CHECK_THAT(hint_of("worker-image: 12\nsource: .\nworkspace: ws\nbuild: make\n"),
               Contains("put the value in quotes"));
    CHECK(error_of("worker-image: w.img\nsource: yes\nworkspace: ws\nbuild: make\n") ==
          "2:9: 'source' must be a string, not a boolean (true)");
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: 1.5\nbuild: make\n") ==
          "3:12: 'workspace' must be a string, not a number (1.5)");
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: ws\nbuild: '  '\n") ==
          "4:8: 'build' must not be empty");
    CHECK(error_of("worker-image: w.img\nsource: {a: 1}\nworkspace: ws\nbuild: make\n") ==
          "2:9: 'source' must be a string, not a mapping");
}

TEST_CASE("install: Debian package names only", "[spec]") {
    CHECK(error_of(required + "install: gcc\n") == "5:10: 'install' must be a list, not a string");
    CHECK(hint_of(required + "install: gcc\n") == "write '- gcc' on the next line, or [gcc]");
    CHECK(error_of(required + "install:\n  - gcc\n  - -oDpkg::Options\n") ==
          "7:5: '-oDpkg::Options' is not a Debian package name");
    CHECK(error_of(required + "install: [GCC]\n") == "5:11: 'GCC' is not a Debian package name");
    CHECK(error_of(required + "install: [g]\n") == "5:11: 'g' is not a Debian package name");
    CHECK(error_of(required + "install: [gcc=]\n") == "5:11: 'gcc=' is not a Debian package name");
    CHECK(error_of(required + "install: [gcc, 7]\n") ==
          "5:16: entries of 'install' must be strings, not an integer (7)");
    CHECK_THAT(error_of(required + "install: [gcc, '']\n"),
               Contains("5:16: ") && Contains("must not be empty"));
}

TEST_CASE("ansible: a list of plays", "[spec]") {
    CHECK(error_of(required + "ansible:\n  hosts: worker\n  tasks: []\n") ==
          "6:3: 'ansible' must be a playbook: a list of plays, not a mapping");
    CHECK(hint_of(required + "ansible:\n  hosts: worker\n") ==
          "start each play with '- hosts: worker'");
    CHECK(error_of(required + "ansible:\n  - hosts: worker\n  - apt\n") ==
          "7:5: each play in 'ansible' must be a mapping, not a string");
}

TEST_CASE("exclude: a list of strings", "[spec]") {
    CHECK(parse(required + "exclude:\n  - '*.o'\n").exclude == std::vector<std::string>{"*.o"});
    CHECK(error_of(required + "exclude: '*.o'\n") ==
          "5:10: 'exclude' must be a list, not a string");
    CHECK(error_of(required + "exclude: [true]\n") ==
          "5:11: entries of 'exclude' must be strings, not a boolean (true)");
}

TEST_CASE("env: names and string values", "[spec]") {
    CHECK(error_of(required + "env:\n  CC: gcc\n  DEBUG: yes\n") ==
          "7:10: environment variable DEBUG must be a string, not a boolean (true)");
    CHECK_THAT(hint_of(required + "env:\n  V: 1.10\n"), Contains("put the value in quotes"));
    CHECK(error_of(required + "env:\n  V: 1.10\n") ==
          "6:6: environment variable V must be a string, not a number (1.1)");
    CHECK(error_of(required + "env:\n  2FAST: furious\n") ==
          "6:3: '2FAST' is not a valid environment variable name");
    CHECK(error_of(required + "env:\n  A-B: x\n") ==
          "6:3: 'A-B' is not a valid environment variable name");
    CHECK(error_of(required + "env:\n  A: x\n  A: y\n") ==
          "7:3: environment variable A is given twice");
    CHECK(error_of(required + "env: [A=1]\n") ==
          "5:6: 'env' must be a mapping of variable names to values, not a list");
}

TEST_CASE("limits: quantities with units, within range", "[spec]") {
    const std::string limits = required + "limits:\n";
    CHECK(error_of(limits + "  cpus: 2\n  memroy: 1GiB\n") ==
          "7:3: unknown key 'memroy' in limits (did you mean 'memory'?)");
    CHECK(error_of(limits + "  memory: 1GiB\n  cpus: two\n") ==
          "7:9: limit 'cpus' must be an integer, not a string");
    CHECK(error_of(limits + "  cpus: 1.5\n") ==
          "6:9: limit 'cpus' must be a whole number, not 1.5");
    CHECK(error_of(limits + "  cpus: 300\n") == "6:9: limit 'cpus' is more than 256");
    CHECK(error_of(limits + "  cpus: 0\n") == "6:9: limit 'cpus' must be positive, not 0");
    CHECK(error_of(limits + "  cpus: true\n") ==
          "6:9: limit 'cpus' must be an integer, not a boolean (true)");
    CHECK(error_of(limits + "  memory: 2 parsecs\n") ==
          "6:11: limit 'memory': unknown size unit 'parsecs'; use B, KiB, MiB, GiB, TiB (or K, "
          "M, G, T), or KB, MB, GB, TB");
    CHECK(error_of(limits + "  memory: 512\n") ==
          "6:11: limit 'memory' needs a unit: write e.g. '512MiB'");
    CHECK(error_of(limits + "  memory: 1MiB\n") ==
          "6:11: limit 'memory' is below the minimum of 64 MiB");
    CHECK(error_of(limits + "  memory: [1GiB]\n") ==
          "6:11: limit 'memory' must be a quantity, not a list");
    CHECK(error_of(limits + "  disk: 0GiB\n") == "6:9: limit 'disk' must be greater than zero");
    CHECK(error_of(limits + "  cpu-time: -5\n") ==
          "6:13: limit 'cpu-time' must be positive, not -5");
    CHECK(error_of(limits + "  cpu-time: 1.5\n") ==
          "6:13: limit 'cpu-time' must be a whole number, not 1.5");
    CHECK(error_of(limits + "  timeout: 5 fortnights\n") ==
          "6:12: limit 'timeout': cannot read '5 fortnights' as a duration; use s, m, h or d, "
          "e.g. '90s', '30m', '1h30m'");
    CHECK(error_of(limits + "  network-rate: 1000\n") ==
          "6:17: limit 'network-rate' needs a unit: write e.g. '1000Mbit/s'");
    CHECK(error_of(limits + "  network-rate: 1bit/s\n") ==
          "6:17: limit 'network-rate': '1bit/s' is less than one byte per second");
    CHECK(error_of(limits + "  log-size: -1MiB\n") ==
          "6:13: limit 'log-size': a size cannot be negative");
    CHECK(error_of(required + "limits: 2GiB\n") == "5:9: limits must be a mapping, not a string");
    CHECK(error_of(limits + "  cpus: 1\n  cpus: 2\n") ==
          "7:3: key 'cpus' is given twice in limits");
    SECTION("a bare number of seconds is a duration") {
        CHECK(parse(limits + "  cpu-time: 90\n  timeout: '120'\n").limits.cpu_time == 90u);
        CHECK(parse(limits + "  timeout: '120'\n").limits.timeout == 120u);
    }
    SECTION("the minimum itself is accepted") {
        CHECK(parse(limits + "  memory: 64MiB\n  cpus: 256\n").limits.memory == 64 * spec::MiB);
    }
}

TEST_CASE("network: rules per phase", "[spec]") {
    const std::string network = required + "network:\n";
    CHECK(error_of(network + "  provision:\n    - host: deb.debian.org\n      port: 21\n"
                             "      protocol: ftp\n") ==
          "9:17: unknown protocol 'ftp'; use http, https or tcp");
    CHECK(error_of(network + "  build:\n    - host: git.example.org\n      protocol: tcp\n") ==
          "7:7: a tcp rule needs a port");
    CHECK(hint_of(network + "  build:\n    - host: git.example.org\n      protocol: tcp\n") ==
          "add e.g. 'port: 9418'");
    CHECK(error_of(network + "  build:\n    - host: exa mple.org\n      protocol: https\n") ==
          "7:13: 'exa mple.org' is not a valid host name (use lower-case letters, digits, '-' "
          "and '.'; a wildcard only as a leading '*.')");
    CHECK(error_of(network + "  build:\n    - host: 1.2.3\n      protocol: https\n") ==
          "7:13: '1.2.3' is read by the C library as the IPv4 address 1.2.0.3; write an address as "
          "four decimal numbers");
    CHECK(error_of(network + "  build:\n    - host: example.org\n      port: 70000\n"
                             "      protocol: tcp\n") ==
          "8:13: 'port' must be between 1 and 65535, not 70000");
    CHECK(error_of(network + "  build:\n    - {host: example.org, port: 0, protocol: tcp}\n") ==
          "7:33: 'port' must be between 1 and 65535, not 0");
    CHECK(error_of(network + "  build:\n    - {host: example.org, port: '22', protocol: tcp}\n") ==
          "7:33: 'port' must be an integer, not a string");
    CHECK(error_of(network + "  build:\n    - {port: 22, protocol: tcp}\n") ==
          "7:7: missing required key 'host' in a network rule");
    CHECK(error_of(network + "  build:\n    - {host: example.org}\n") ==
          "7:7: missing required key 'protocol' in a network rule");
    CHECK(error_of(network + "  build:\n    - {host: example.org, protocol: tcp, prot: 1}\n") ==
          "7:42: unknown key 'prot' in a network rule (did you mean 'port'?)");
    CHECK(error_of(network + "  build:\n    - example.org\n") ==
          "7:7: a network rule must be a mapping such as {host: deb.debian.org, protocol: "
          "https}, not a string");
    CHECK(error_of(network + "  build: {host: example.org}\n") ==
          "6:10: 'build' must be a list of rules, not a mapping");
    CHECK(error_of(network + "  biuld: []\n") ==
          "6:3: unknown key 'biuld' in network (did you mean 'build'?)");
    CHECK(error_of(network + "  build:\n    - {host: 12, protocol: https}\n") ==
          "7:14: 'host' must be a string, not an integer (12)");
}

TEST_CASE("the workspace is neither the source nor around it", "[spec]") {
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: ./\nbuild: make\n") ==
          "3:12: the workspace must not be the source directory");
    std::filesystem::create_directories(spec_directory.path() / "src");
    CHECK(error_of("worker-image: w.img\nsource: src/..\nworkspace: .\nbuild: make\n") ==
          "3:12: the workspace must not be the source directory");
    const std::string contains =
        error_of("worker-image: w.img\nsource: src\nworkspace: .\nbuild: make\n");
    CHECK(contains == "3:12: the workspace '" + spec_directory.path().string() +
                          "' contains the source directory");
    CHECK_THAT(error_of("worker-image: w.img\nsource: a/b/c\nworkspace: a\nbuild: make\n"),
               Contains("contains the source directory"));
    SECTION("inside the source or beside it is fine") {
        CHECK(parse("worker-image: w.img\nsource: .\nworkspace: out/ws\nbuild: make\n").workspace ==
              "out/ws");
        CHECK(parse("worker-image: w.img\nsource: src\nworkspace: ws\nbuild: make\n").workspace ==
              "ws");
        CHECK(
            parse("worker-image: w.img\nsource: src\nworkspace: src-ws\nbuild: make\n").workspace ==
            "src-ws");
    }
}

// The value a merge key brings in is overridden by the mapping's own key; an error in that
// value must point at it, not at the overridden one.
TEST_CASE("an error in an overriding value points at it", "[spec]") {
    CHECK_THAT(error_of(required + "ansible:\n  - hosts: worker\n    vars: &v\n      memory: 1GiB\n"
                                   "limits:\n  <<: *v\n  memory: 2 parsecs\n"),
               StartsWith("11:11: limit 'memory': unknown size unit 'parsecs'"));
}

// PyYAML places an empty value right after its ':' (line 4, column 7 for "build:" below); the
// error must not point at the line after it, which may not exist.
TEST_CASE("an error about an empty value points after its key", "[spec]") {
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: ws\nbuild:\n") ==
          "4:7: 'build' must be a string, not an empty value (null)");
    CHECK(error_of(required + "env:\n  V:\n") ==
          "6:5: environment variable V must be a string, not an empty value (null)");
}

// A path through a directory that does not exist yet keeps a trailing '/' ("dir/"), which
// then compares unequal to the same directory written without it.
TEST_CASE("a workspace equal to the source is found through missing directories", "[spec]") {
    CHECK(error_of("worker-image: w.img\nsource: .\nworkspace: missing/..\nbuild: make\n") ==
          "3:12: the workspace must not be the source directory");
}

TEST_CASE("load_spec reads a file and resolves paths from its directory", "[spec]") {
    const TemporaryDirectory temporary;
    const auto& directory = temporary.path();
    const auto file = directory / "spec.yaml";
    std::ofstream(file) << required;

    const BuildSpec spec = spec::load_spec(file.string());
    CHECK(spec.directory == directory);
    CHECK(spec.document.file == file.string());
    CHECK(spec.build == "make");

    std::ofstream(file) << "worker-image: w.img\n";
    REQUIRE_THROWS_WITH(spec::load_spec(file.string()),
                        file.string() + ":1:1: missing required key 'source' in the spec");
    const auto missing = (directory / "missing.yaml").string();
    REQUIRE_THROWS_AS(spec::load_spec(missing), UsageError);
    REQUIRE_THROWS_WITH(spec::load_spec(missing), Contains(": cannot read: "));
}

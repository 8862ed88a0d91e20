// Tests for spec/effective.hpp: defaults, origins, absolute paths and the worker image.
#include "spec/effective.hpp"
#include "temporary_directory.hpp"
#include "yaml/source_error.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::spec::BuildSpec;
using contractor::spec::EffectiveSpec;
using contractor::spec::ImageReference;
using contractor::spec::UserConfig;
using contractor::spec::ValueOrigin;
using contractor::test::TemporaryDirectory;
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

BuildSpec minimal_spec(const fs::path& directory) {
    BuildSpec spec;
    spec.directory = directory;
    spec.worker_image = "worker.img";
    spec.source = ".";
    spec.workspace = "ws";
    spec.build = "make";
    spec.ansible = Json::array();
    return spec;
}

policy::NetworkRule https(const std::string& host) {
    return {host, 443, policy::Protocol::https};
}

} // namespace

TEST_CASE("limits come from the spec, then the config, then the built-in default", "[effective]") {
    const TemporaryDirectory directory;
    BuildSpec spec = minimal_spec(directory.path());
    spec.limits.cpus = 4;
    spec.limits.timeout = 60;
    UserConfig config;
    config.limits.cpus = 2;
    config.limits.memory = 2 * spec::GiB;

    const EffectiveSpec effective = spec::resolve(spec, config);
    CHECK(effective.limit("cpus").value == 4);
    CHECK(effective.limit("cpus").origin == ValueOrigin::spec);
    CHECK(effective.limit("timeout").value == 60);
    CHECK(effective.limit("timeout").origin == ValueOrigin::spec);
    CHECK(effective.limit("memory").value == 2 * spec::GiB);
    CHECK(effective.limit("memory").origin == ValueOrigin::config);
    CHECK(effective.limit("disk").value == 8 * spec::GiB);
    CHECK(effective.limit("disk").origin == ValueOrigin::builtin);
    CHECK(effective.limit("network-rate").value == 2'500'000);
    CHECK(effective.limit("cpu-time").value == 3600);
    for (std::size_t i = 0; i < spec::limit_fields.size(); ++i) {
        CHECK(&effective.limit(spec::limit_fields[i].key) == &effective.limits[i]);
    }
    REQUIRE_THROWS_AS(effective.limit("memroy"), std::out_of_range);
}

TEST_CASE("origin names", "[effective]") {
    CHECK(spec::to_string(ValueOrigin::builtin) == "default");
    CHECK(spec::to_string(ValueOrigin::config) == "config");
    CHECK(spec::to_string(ValueOrigin::spec) == "spec");
}

TEST_CASE("without a user config the built-in base policy applies", "[effective]") {
    const TemporaryDirectory directory;
    BuildSpec spec = minimal_spec(directory.path());
    spec.network.provision = {https("deb.debian.org"), https("pypi.org")};
    const EffectiveSpec effective = spec::resolve(spec, {});
    REQUIRE(effective.network.provision.size() == 4);
    CHECK(effective.network.provision[1].rule == https("deb.debian.org"));
    CHECK(effective.network.provision[1].origin == policy::Origin::builtin);
    CHECK(effective.network.provision[3].rule == https("pypi.org"));
    CHECK(effective.network.provision[3].origin == policy::Origin::spec);
    CHECK(effective.network.build.empty());
}

TEST_CASE("the network policy merges config and spec rules", "[effective]") {
    const TemporaryDirectory directory;
    BuildSpec spec = minimal_spec(directory.path());
    spec.network.provision = {https("deb.debian.org"), https("pypi.org")};
    spec.network.build = {https("crates.io")};
    UserConfig config;
    config.network.provision = policy::tag_rules({https("deb.debian.org")}, policy::Origin::config);

    const EffectiveSpec effective = spec::resolve(spec, config);
    REQUIRE(effective.network.provision.size() == 2);
    CHECK(effective.network.provision[0].rule == https("deb.debian.org"));
    CHECK(effective.network.provision[0].origin == policy::Origin::config);
    CHECK(effective.network.provision[1].rule == https("pypi.org"));
    CHECK(effective.network.provision[1].origin == policy::Origin::spec);
    REQUIRE(effective.network.build.size() == 1);
    CHECK(effective.network.build[0].origin == policy::Origin::spec);
}

TEST_CASE("paths become absolute, from the spec's directory", "[effective]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    BuildSpec spec = minimal_spec(root);

    SECTION("a workspace inside the source is noted") {
        spec.workspace = "out/./ws";
        const EffectiveSpec effective = spec::resolve(spec, {});
        CHECK(effective.directory == root);
        CHECK(effective.source == root);
        CHECK(effective.workspace == root / "out" / "ws");
        CHECK(effective.workspace_in_source == fs::path("out/ws"));
    }
    SECTION("a workspace beside the source is not") {
        fs::create_directories(root / "src");
        spec.source = "src";
        spec.workspace = "../" + root.filename().string() + "/ws";
        const EffectiveSpec effective = spec::resolve(spec, {});
        CHECK(effective.source == root / "src");
        CHECK(effective.workspace == root / "ws");
        CHECK_FALSE(effective.workspace_in_source.has_value());
    }
    SECTION("a name that starts like the source is beside it") {
        spec.source = "src";
        spec.workspace = "src-ws";
        CHECK_FALSE(spec::resolve(spec, {}).workspace_in_source.has_value());
    }
    SECTION("absolute paths and '..' out of the spec's folder are refused, at the key") {
        spec.source = "/opt/project";
        CHECK_THROWS_AS(spec::resolve(spec, {}), yaml::SourceError);
        CHECK_THROWS_WITH(spec::resolve(spec, {}),
                          Contains("source '/opt/project' is an absolute path outside the "
                                   "spec's folder " +
                                   root.string()));
        spec.source = ".";
        spec.workspace = "../ws";
        CHECK_THROWS_WITH(spec::resolve(spec, {}),
                          Contains("workspace '../ws' leaves the spec's folder"));
    }
    SECTION("the command line overrides them, relative to the current folder") {
        fs::create_directories(root / "elsewhere" / "src");
        spec.source = "/opt/project";
        spec.workspace = "../ws";
        spec::PathOverrides overrides;
        overrides.current_directory = root / "elsewhere";
        overrides.source = "src";
        overrides.workspace = "/var/tmp/contractor-ws";
        const EffectiveSpec effective = spec::resolve(spec, {}, overrides);
        CHECK(effective.source == root / "elsewhere" / "src");
        CHECK(effective.workspace == fs::path("/var/tmp/contractor-ws"));
        CHECK(effective.path_origins.source == spec::PathOrigin::command_line);
        CHECK(effective.path_origins.workspace == spec::PathOrigin::command_line);
        CHECK(effective.path_origins.worker_image == spec::PathOrigin::spec);
        CHECK_FALSE(effective.workspace_in_source.has_value());
    }
    SECTION("command-line symlinks are the user's own, and followed") {
        fs::create_directories(root / "real");
        fs::create_directory_symlink(root / "real", root / "link");
        spec::PathOverrides overrides;
        overrides.current_directory = root;
        overrides.workspace = "link";
        spec.source = "src";
        CHECK(spec::resolve(spec, {}, overrides).workspace == root / "real");
        // The same symlink named by the spec is refused.
        spec.workspace = "link";
        CHECK_THROWS_WITH(spec::resolve(spec, {}), Contains("goes through the symlink"));
    }
    SECTION("a symlinked workspace inside the source is still noted as inside") {
        fs::create_directories(root / "src" / "out");
        fs::create_directory_symlink(root / "src", root / "src-link");
        spec::PathOverrides overrides;
        overrides.current_directory = root;
        overrides.source = "src-link";
        spec.workspace = "src/out";
        CHECK(spec::resolve(spec, {}, overrides).workspace_in_source == fs::path("out"));
    }
    SECTION("the command line may not make the workspace the source, or contain it") {
        spec::PathOverrides overrides;
        overrides.current_directory = root;
        overrides.workspace = ".";
        spec.source = "src";
        CHECK_THROWS_WITH(spec::resolve(spec, {}, overrides),
                          Contains("contains the source folder"));
        overrides.workspace = "src";
        CHECK_THROWS_AS(spec::resolve(spec, {}, overrides), UsageError);
        CHECK_THROWS_WITH(spec::resolve(spec, {}, overrides), Contains("is the source folder"));
    }
    SECTION("the config's paths.allow roots admit paths outside") {
        fs::create_directories(root / "shared");
        UserConfig config;
        config.allowed_path_roots = {root / "shared"};
        spec.source = "src";
        spec.workspace = (root / "shared" / "ws").string();
        const EffectiveSpec effective = spec::resolve(spec, config);
        CHECK(effective.workspace == root / "shared" / "ws");
        CHECK(effective.path_origins.workspace == spec::PathOrigin::spec);
    }
    SECTION("the other fields are copied") {
        spec.install = {"gcc"};
        spec.exclude = {"*.o"};
        spec.env = {{"CC", "gcc"}};
        spec.ansible = Json::parse(R"([{"hosts": "worker"}])");
        UserConfig config;
        config.file = "/home/u/.config/contractor/config.yaml";
        const EffectiveSpec effective = spec::resolve(spec, config);
        CHECK(effective.build == "make");
        CHECK(effective.install == std::vector<std::string>{"gcc"});
        CHECK(effective.exclude == std::vector<std::string>{"*.o"});
        CHECK(effective.env == spec.env);
        CHECK(effective.ansible == spec.ansible);
        CHECK(effective.config_file == config.file);
    }
}

TEST_CASE("the worker image is a file or a cached image", "[effective]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    BuildSpec spec = minimal_spec(root);
    const auto classify = [&](const std::string& value) {
        spec.worker_image = value;
        return spec::resolve(spec, {}).worker_image;
    };
    const auto is_file = [](const ImageReference& image, const fs::path& path) {
        return image.kind == ImageReference::Kind::file && image.value == path.string();
    };

    CHECK(is_file(classify("worker.img"), root / "worker.img"));
    CHECK(is_file(classify("debian.qcow2"), root / "debian.qcow2"));
    CHECK(is_file(classify("disk.raw"), root / "disk.raw"));
    CHECK(is_file(classify("images/worker"), root / "images" / "worker"));
    CHECK(is_file(classify("./worker"), root / "worker"));
    CHECK_THROWS_WITH(classify("../images/w.qcow2"),
                      Contains("worker-image '../images/w.qcow2' leaves the spec's folder"));
    CHECK_THROWS_WITH(classify("/srv/images/worker.img"),
                      Contains("worker-image '/srv/images/worker.img' is an absolute path"));

    const ImageReference cached = classify("worker");
    CHECK(cached.kind == ImageReference::Kind::cached);
    CHECK(cached.value == "worker");
    CHECK(classify("debian-12.iso").kind == ImageReference::Kind::cached);

    SECTION("a file of that name beside the spec makes it a file") {
        std::ofstream(root / "worker") << "disk";
        CHECK(is_file(classify("worker"), root / "worker"));
    }
    SECTION("a symlink beside the spec is refused, not followed") {
        fs::create_symlink("/etc/passwd", root / "worker");
        CHECK_THROWS_WITH(classify("worker"), Contains("goes through the symlink"));
    }
    SECTION("the command line's --image: a file relative to the current folder, or a name") {
        spec::PathOverrides overrides;
        overrides.current_directory = root / "here";
        overrides.worker_image = "../images/w.qcow2";
        spec.worker_image = "/srv/refused.img";
        const EffectiveSpec effective = spec::resolve(spec, {}, overrides);
        CHECK(is_file(effective.worker_image, root / "images" / "w.qcow2"));
        CHECK(effective.path_origins.worker_image == spec::PathOrigin::command_line);
        overrides.worker_image = "worker-toolchain";
        CHECK(spec::resolve(spec, {}, overrides).worker_image.kind == ImageReference::Kind::cached);
    }
}

TEST_CASE("to_json shows every value with its origin", "[effective]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    BuildSpec spec = minimal_spec(root);
    spec.worker_image = "worker";
    spec.install = {"gcc"};
    spec.env = {{"CC", "gcc"}, {"A", "1"}};
    spec.limits.cpus = 2;
    spec.network.build = {{"git.example.org", 9418, policy::Protocol::tcp}};
    UserConfig config;
    config.file = "/home/u/.config/contractor/config.yaml";
    config.limits.memory = 2 * spec::GiB;
    config.network.provision = policy::tag_rules({https("deb.debian.org")}, policy::Origin::config);

    const Json json = spec::to_json(spec::resolve(spec, config));
    const Json expected = {
        {"config", "/home/u/.config/contractor/config.yaml"},
        {"worker-image", {{"cached", "worker"}}},
        {"source", root.string()},
        {"workspace", (root / "ws").string()},
        {"paths-from", {{"worker-image", "spec"}, {"source", "spec"}, {"workspace", "spec"}}},
        {"workspace-in-source", "ws"},
        {"build", "make"},
        {"install", {"gcc"}},
        {"ansible", Json::array()},
        {"exclude", Json::array()},
        {"env", {{"CC", "gcc"}, {"A", "1"}}},
        {"limits",
         {{"cpus", {{"value", 2}, {"unit", "count"}, {"from", "spec"}}},
          {"memory", {{"value", 2147483648}, {"unit", "bytes"}, {"from", "config"}}},
          {"disk", {{"value", 8589934592}, {"unit", "bytes"}, {"from", "default"}}},
          {"cpu-time", {{"value", 3600}, {"unit", "seconds"}, {"from", "default"}}},
          {"timeout", {{"value", 7200}, {"unit", "seconds"}, {"from", "default"}}},
          {"network-rate", {{"value", 2500000}, {"unit", "bytes/s"}, {"from", "default"}}},
          {"network-transfer", {{"value", 2147483648}, {"unit", "bytes"}, {"from", "default"}}},
          {"log-size", {{"value", 67108864}, {"unit", "bytes"}, {"from", "default"}}},
          {"export-size", {{"value", 4294967296}, {"unit", "bytes"}, {"from", "default"}}}}},
        {"network",
         {{"provision",
           {{{"host", "deb.debian.org"},
             {"port", 443},
             {"protocol", "https"},
             {"from", "config"}}}},
          {"build",
           {{{"host", "git.example.org"},
             {"port", 9418},
             {"protocol", "tcp"},
             {"from", "spec"}}}}}},
    };
    CHECK(json.dump(2) == expected.dump(2));
}

TEST_CASE("to_json without a config file or a workspace in the source", "[effective]") {
    const TemporaryDirectory directory;
    BuildSpec spec = minimal_spec(directory.path());
    spec.source = "src";
    const Json json = spec::to_json(spec::resolve(spec, {}));
    CHECK(json["config"].is_null());
    CHECK(json["workspace-in-source"].is_null());
    CHECK(json["worker-image"] == Json{{"file", (directory.path() / "worker.img").string()}});
    CHECK(json["network"].dump() ==
          R"({"provision":[)"
          R"({"host":"deb.debian.org","port":80,"protocol":"http","from":"default"},)"
          R"({"host":"deb.debian.org","port":443,"protocol":"https","from":"default"},)"
          R"({"host":"security.debian.org","port":80,"protocol":"http","from":"default"}],)"
          R"("build":[]})");
    CHECK(json["env"].dump() == "{}");
}

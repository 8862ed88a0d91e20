// Tests for cli/app.hpp: commands run in-process, with their own streams and config location.
#include "cli/app.hpp"
#include "run_cli.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace contractor;
using contractor::test::TemporaryDirectory;
using Json = nlohmann::ordered_json;
using Catch::Matchers::Contains;
using Catch::Matchers::Matches;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

// Writes a file into `directory`; returns its path.
std::string write(const TemporaryDirectory& directory, const std::string& name,
                  const std::string& text) {
    return directory.write(name, text).string();
}

using test::Outcome;
using test::run;

const std::string good_spec = "worker-image: worker.img\nsource: .\nworkspace: ws\n"
                              "build: make\ninstall: [gcc]\nlimits: {cpus: 2}\n";

} // namespace

TEST_CASE("dump prints the spec as JSON", "[app]") {
    const TemporaryDirectory directory;
    const std::string spec =
        write(directory, "spec.yaml",
              good_spec + "ansible:\n  - hosts: worker\n    vars: {mode: 0755, on: yes}\n");
    const Outcome outcome = run({"dump", spec}, directory.path());
    CHECK(outcome.err.empty());
    CHECK(outcome.exit_code == 0);
    const Json expected = Json::parse(R"({"worker-image": "worker.img", "source": ".",
        "workspace": "ws", "build": "make", "install": ["gcc"], "limits": {"cpus": 2},
        "ansible": [{"hosts": "worker", "vars": {"mode": 493, "true": true}}]})");
    CHECK(outcome.out == expected.dump(2) + "\n");
}

TEST_CASE("dump --effective prints the resolved spec", "[app]") {
    const TemporaryDirectory directory;
    const std::string spec = write(directory, "spec.yaml", good_spec);

    SECTION("without a user config") {
        const Outcome outcome = run({"dump", "--effective", spec}, directory.path());
        CHECK(outcome.err.empty());
        REQUIRE(outcome.exit_code == 0);
        const Json json = Json::parse(outcome.out);
        CHECK(json["config"].is_null());
        CHECK(json["worker-image"] == Json{{"file", (directory.path() / "worker.img").string()}});
        CHECK(json["source"] == directory.path().string());
        CHECK(json["workspace"] == (directory.path() / "ws").string());
        CHECK(json["workspace-in-source"] == "ws");
        CHECK(json["limits"]["cpus"].dump() == R"({"value":2,"unit":"count","from":"spec"})");
        CHECK(json["limits"]["memory"].dump() ==
              R"({"value":1073741824,"unit":"bytes","from":"default"})");
        CHECK(json["network"]["provision"].size() == 3);
        CHECK(json["network"]["provision"][0]["from"] == "default");
        CHECK(json["network"]["build"] == Json::array());
    }
    SECTION("with the user config found under XDG_CONFIG_HOME") {
        fs::create_directories(directory.path() / "contractor");
        const std::string config =
            write(directory, "contractor/config.yaml",
                  "limits: {memory: 2GiB}\nnetwork:\n  provision: [{host: deb.debian.org, "
                  "protocol: https}]\n");
        const Outcome outcome = run({"dump", "--effective", spec}, directory.path());
        REQUIRE(outcome.exit_code == 0);
        const Json json = Json::parse(outcome.out);
        CHECK(json["config"] == config);
        CHECK(json["limits"]["memory"].dump() ==
              R"({"value":2147483648,"unit":"bytes","from":"config"})");
        CHECK(json["network"]["provision"].dump() ==
              R"([{"host":"deb.debian.org","port":443,"protocol":"https","from":"config"}])");
    }
    SECTION("with --config") {
        const std::string config = write(directory, "mine.yaml", "limits: {cpus: 8, disk: 1G}\n");
        const Outcome outcome =
            run({"--config", config, "dump", "--effective", spec}, directory.path());
        REQUIRE(outcome.exit_code == 0);
        const Json json = Json::parse(outcome.out);
        CHECK(json["config"] == config);
        CHECK(json["limits"]["cpus"]["from"] == "spec");
        CHECK(json["limits"]["disk"].dump() ==
              R"({"value":1073741824,"unit":"bytes","from":"config"})");
    }
}

TEST_CASE("a bad spec: exit 2 and one error line naming the place", "[app]") {
    const TemporaryDirectory directory;
    const std::string spec =
        write(directory, "spec.yaml",
              "worker-image: worker.img\nsource: .\nworkspace: ws\nbiuld: make\n");
    const Outcome outcome = run({"dump", spec}, directory.path());
    CHECK(outcome.exit_code == 2);
    CHECK(outcome.out.empty());
    CHECK(outcome.err == "contractor: error: " + spec +
                             ":4:1: unknown key 'biuld' in the spec (did you mean 'build'?) "
                             "(valid keys: worker-image, source, workspace, build, install, "
                             "ansible, exclude, env, limits, network)\n");
}

TEST_CASE("a bad user config: exit 2, located in the config", "[app]") {
    const TemporaryDirectory directory;
    const std::string spec = write(directory, "spec.yaml", good_spec);
    const std::string config = write(directory, "config.yaml", "limit:\n  cpus: 2\n");
    const Outcome outcome =
        run({"--config", config, "dump", "--effective", spec}, directory.path());
    CHECK(outcome.exit_code == 2);
    CHECK(outcome.out.empty());
    CHECK_THAT(outcome.err,
               StartsWith("contractor: error: " + config +
                          ":1:1: unknown key 'limit' in the config (did you mean 'limits'?)"));
    // Without --effective the user config is not read at all.
    CHECK(run({"--config", config, "dump", spec}, directory.path()).exit_code == 0);
}

TEST_CASE("files that cannot be read: exit 2", "[app]") {
    const TemporaryDirectory directory;
    const std::string missing = (directory.path() / "missing.yaml").string();
    const Outcome spec = run({"dump", missing}, directory.path());
    CHECK(spec.exit_code == 2);
    CHECK(spec.err == "contractor: error: " + missing +
                          ": cannot read: No such file or directory (check the path)\n");

    const Outcome folder = run({"dump", directory.path().string()}, directory.path());
    CHECK(folder.exit_code == 2);
    CHECK_THAT(folder.err, Contains("it is a directory"));

    const std::string good = write(directory, "spec.yaml", good_spec);
    const Outcome config = run({"--config", missing, "dump", good}, directory.path());
    CHECK(config.exit_code == 2);
    CHECK(config.out.empty());
    CHECK_THAT(config.err, StartsWith("contractor: error: ") && Contains("missing.yaml"));
}

TEST_CASE("an unknown command suggests the closest one", "[app]") {
    const TemporaryDirectory directory;
    const Outcome typo = run({"dumb", "spec.yaml"}, directory.path());
    CHECK(typo.exit_code == 2);
    CHECK(typo.out.empty());
    CHECK(typo.err == "contractor: error: unknown command 'dumb' (did you mean 'dump'?) "
                      "(see 'contractor --help')\n");

    const Outcome unrelated = run({"frobnicate"}, directory.path());
    CHECK(unrelated.exit_code == 2);
    CHECK(unrelated.err ==
          "contractor: error: unknown command 'frobnicate' (see 'contractor --help')\n");
}

TEST_CASE("usage errors: exit 2 and one error line", "[app]") {
    const TemporaryDirectory directory;
    SECTION("no subcommand") {
        const Outcome outcome = run({}, directory.path());
        CHECK(outcome.exit_code == 2);
        CHECK(outcome.out.empty());
        CHECK_THAT(outcome.err, StartsWith("contractor: error: "));
        CHECK(std::count(outcome.err.begin(), outcome.err.end(), '\n') == 1);
    }
    SECTION("dump without a spec") {
        const Outcome outcome = run({"dump"}, directory.path());
        CHECK(outcome.exit_code == 2);
        CHECK_THAT(outcome.err, StartsWith("contractor: error: ") && Contains("SPEC is required"));
        CHECK(std::count(outcome.err.begin(), outcome.err.end(), '\n') == 1);
    }
    SECTION("an unknown option") {
        const Outcome outcome = run({"dump", "--frobnicate", "spec.yaml"}, directory.path());
        CHECK(outcome.exit_code == 2);
        CHECK_THAT(outcome.err, StartsWith("contractor: error: ") && Contains("--frobnicate"));
    }
}

TEST_CASE("--version and --help exit 0", "[app]") {
    const TemporaryDirectory directory;
    const Outcome version = run({"--version"}, directory.path());
    CHECK(version.exit_code == 0);
    CHECK_THAT(version.out, Matches(R"(\d+\.\d+\.\d+\n)"));
    CHECK(version.err.empty());

    const Outcome help = run({"--help"}, directory.path());
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.out, Contains("dump"));
    CHECK(help.err.empty());
}

TEST_CASE("error lines show control characters and bad bytes escaped", "[app]") {
    const TemporaryDirectory directory;
    // A file name from a hostile repository reaches the message as it is.
    const std::string name = "clip\x1b]52;c;aGk=\x07\xff.yaml";
    const Outcome outcome = run({"dump", (directory.path() / name).string()}, directory.path());
    CHECK(outcome.exit_code == 2);
    CHECK_THAT(outcome.err, Contains("clip\\e]52;c;aGk=\\x07\\xff.yaml: cannot read"));
    CHECK(outcome.err.find('\x1b') == std::string::npos);
    CHECK(std::count(outcome.err.begin(), outcome.err.end(), '\n') == 1);
}

TEST_CASE("a malformed quantity on the command line is a usage error, not a bug", "[app]") {
    const TemporaryDirectory directory;
    const std::string image =
        write(directory, "worker.img", "not booted: the size is refused first");
    const Outcome outcome = run({"image", "boot", image, "--memory", "junk"}, directory.path());
    CHECK(outcome.exit_code == 2);
    CHECK_THAT(outcome.err, StartsWith("contractor: error: "));
    CHECK_THAT(outcome.err, !Contains("please report"));
    CHECK_THAT(outcome.err, Contains("junk"));
}

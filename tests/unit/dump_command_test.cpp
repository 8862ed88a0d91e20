// Tests for cli/dump_command.cpp: `dump --effective` with the command line's paths.
#include "cli/app.hpp"
#include "run_cli.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::test::TemporaryDirectory;
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

using test::Outcome;
using test::run;

} // namespace

TEST_CASE("dump --effective shows where each path came from", "[dump-command]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    const std::string spec =
        directory
            .write(
                "project/spec.yaml",
                "worker-image: ../images/w.img\nsource: ../outside\nworkspace: ws\nbuild: make\n")
            .string();
    directory.write("outside/main.c", "");
    directory.write("images/w.img", "");

    SECTION("the spec's paths leave its folder: refused") {
        const Outcome outcome = run({"dump", "--effective", spec}, root);
        CHECK(outcome.exit_code == 2);
        CHECK_THAT(outcome.err,
                   Contains("worker-image '../images/w.img' leaves the spec's folder"));
    }
    SECTION("given on the command line instead: the user's own") {
        fs::create_directory_symlink(root / "outside", root / "outside-link");
        const Outcome outcome =
            run({"dump", "--effective", "--source", (root / "outside-link").string(), "--image",
                 (root / "images" / "w.img").string(), spec},
                root);
        INFO(outcome.err);
        REQUIRE(outcome.exit_code == 0);
        const Json json = Json::parse(outcome.out);
        // Symlinks on the command line are followed: the real folder is what gets read.
        CHECK(json["source"] == (root / "outside").string());
        CHECK(json["worker-image"] == Json{{"file", (root / "images" / "w.img").string()}});
        CHECK(json["workspace"] == (root / "project" / "ws").string());
        CHECK(json["paths-from"].dump() ==
              R"({"worker-image":"command line","source":"command line","workspace":"spec"})");
    }
    SECTION("or allowed by the config's paths.allow") {
        directory.write("contractor/config.yaml", "paths:\n  allow: [" + root.string() +
                                                      "/outside, " + root.string() + "/images]\n");
        const Outcome outcome = run({"dump", "--effective", spec}, root);
        INFO(outcome.err);
        REQUIRE(outcome.exit_code == 0);
        const Json json = Json::parse(outcome.out);
        CHECK(json["source"] == (root / "outside").string());
        CHECK(json["paths-from"]["source"] == "spec");
    }
    SECTION("a cached image named on the command line") {
        const Outcome outcome = run({"dump", "--effective", "--image", "worker", "--source",
                                     (root / "outside").string(), spec},
                                    root);
        REQUIRE(outcome.exit_code == 0);
        CHECK(Json::parse(outcome.out)["worker-image"] == Json{{"cached", "worker"}});
    }
    SECTION("the command line may not make the workspace the source") {
        const Outcome outcome =
            run({"dump", "--effective", "--source", (root / "outside").string(), "--image",
                 "worker", "--workspace", (root / "outside").string(), spec},
                root);
        CHECK(outcome.exit_code == 2);
        CHECK_THAT(outcome.err, Contains("is the source folder"));
    }
    SECTION("the path options need --effective") {
        const Outcome outcome = run({"dump", "--source", "x", spec}, root);
        CHECK(outcome.exit_code == 2);
        CHECK_THAT(outcome.err, Contains("--effective"));
    }
}

// Tests for cli/build_command.cpp: what `contractor build` refuses at plan time, before
// anything boots or is written (exit 2, one error line, the folders untouched).
#include "cli/app.hpp"
#include "run_cli.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

using namespace contractor;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

using test::Outcome;
using test::run;

// A refusal: exit 2, nothing on stdout, one line on stderr (no plan printed before it).
void check_refused(const Outcome& outcome, const std::string& expected) {
    INFO(outcome.err);
    CHECK(outcome.exit_code == 2);
    CHECK(outcome.out.empty());
    CHECK_THAT(outcome.err, StartsWith("contractor: error: ") && Contains(expected));
    CHECK(std::count(outcome.err.begin(), outcome.err.end(), '\n') == 1);
}

// Every file under `folder` with its content, to show it was not touched.
std::string listing(const fs::path& folder) {
    std::string out;
    std::vector<fs::path> entries;
    for (const auto& entry : fs::recursive_directory_iterator(folder)) {
        entries.push_back(entry.path());
    }
    std::sort(entries.begin(), entries.end());
    for (const auto& path : entries) {
        out += path.string() + "\n";
        if (fs::is_regular_file(fs::symlink_status(path))) {
            std::ifstream in(path, std::ios::binary);
            out += std::string(std::istreambuf_iterator<char>(in), {}) + "\n";
        }
    }
    return out;
}

const std::string spec_text = "worker-image: worker\nsource: src\nworkspace: ws\nbuild: make\n";

// A project folder with src/ and the spec; returns the spec's path.
std::string project(const TemporaryDirectory& directory, const std::string& text = spec_text) {
    directory.write("project/src/main.c", "int main(void) { return 0; }\n");
    return directory.write("project/spec.yaml", text).string();
}

} // namespace

TEST_CASE("build refuses a workspace it did not make", "[build-command]") {
    const TemporaryDirectory directory;
    const std::string spec = project(directory);
    directory.write("project/ws/notes.txt", "mine");
    const std::string before = listing(directory.path());
    const Outcome outcome =
        run({"build", "--topology", "direct", spec}, directory.path() / "config");
    check_refused(outcome, "the workspace " + (directory.path() / "project" / "ws").string() +
                               " is a folder contractor did not make (it is not empty and has "
                               "no .contractor-workspace marker)");
    CHECK_THAT(outcome.err, Contains("touch " + (directory.path() / "project" / "ws").string() +
                                     "/.contractor-workspace"));
    CHECK(listing(directory.path()) == before);

    SECTION("also when the command line names it") {
        directory.write("mine/letter.txt", "dear");
        check_refused(run({"build", "--workspace", (directory.path() / "mine").string(), spec},
                          directory.path() / "config"),
                      "is a folder contractor did not make");
    }
    SECTION("a file as the workspace") {
        directory.write("project/file-ws", "x");
        check_refused(
            run({"build", "--workspace", (directory.path() / "project/file-ws").string(), spec},
                directory.path() / "config"),
            "is not a folder");
    }
}

TEST_CASE("build refuses spec paths that leave the spec's folder", "[build-command]") {
    const TemporaryDirectory directory;
    directory.write("outside/secret", "s3cret");
    const fs::path outside = directory.path() / "outside";

    SECTION("a committed symlink as the workspace") {
        const std::string spec = project(directory);
        fs::create_directory_symlink("../outside", directory.path() / "project" / "ws");
        const std::string before = listing(outside);
        check_refused(run({"build", spec}, directory.path() / "config"),
                      spec + ":3:12: workspace 'ws' goes through the symlink");
        CHECK(listing(outside) == before);
    }
    SECTION("source: ../outside") {
        const std::string spec = project(
            directory, "worker-image: worker\nsource: ../outside\nworkspace: ws\nbuild: make\n");
        const Outcome outcome = run({"build", spec}, directory.path() / "config");
        check_refused(outcome, spec + ":2:9: source '../outside' leaves the spec's folder " +
                                   (directory.path() / "project").string());
        CHECK_THAT(outcome.err, Contains("--source DIR") && Contains("paths: {allow: [DIR]}"));
    }
    SECTION("an absolute worker image") {
        directory.write("images/w.img", std::string(4096, '\0'));
        const std::string image = (directory.path() / "images" / "w.img").string();
        const std::string spec = project(directory, "worker-image: " + image +
                                                        "\nsource: src\nworkspace: ws\n"
                                                        "build: make\n");
        const Outcome outcome = run({"build", spec}, directory.path() / "config");
        check_refused(outcome, spec + ":1:15: worker-image '" + image +
                                   "' is an absolute path outside the spec's folder");
        CHECK_THAT(outcome.err, Contains("--image FILE"));
    }
}

TEST_CASE("build refuses a worker image with a backing file", "[build-command]") {
    const TemporaryDirectory directory;
    // The header qemu-img writes for `create -f qcow2 -b /etc/passwd -F raw`, cut short.
    std::string header(65536, '\0');
    header.replace(0, 8, std::string("QFI\xfb\0\0\0\x03", 8));
    header.replace(8, 8, std::string("\0\0\0\0\0\0\x01\0", 8)); // backing file at 256
    header.replace(16, 4, std::string("\0\0\0\x0b", 4));
    header.replace(20, 4, std::string("\0\0\0\x10", 4));
    header.replace(100, 4, std::string("\0\0\0\x68", 4));
    header.replace(256, 11, "/etc/passwd");
    directory.write("project/x.qcow2", header);
    const std::string spec =
        project(directory, "worker-image: x.qcow2\nsource: src\nworkspace: ws\nbuild: make\n");
    check_refused(run({"build", spec}, directory.path() / "config"),
                  "worker image " + (directory.path() / "project" / "x.qcow2").string() +
                      " is a qcow2 image with a backing file ('/etc/passwd')");
    // Given on the command line, it is checked all the same.
    check_refused(
        run({"build", "--image", (directory.path() / "project" / "x.qcow2").string(), spec},
            directory.path() / "config"),
        "with a backing file");
}

TEST_CASE("build refuses a spec over the config's ceilings", "[build-command]") {
    const TemporaryDirectory directory;
    const std::string config = directory
                                   .write("config/contractor/config.yaml",
                                          "ceilings: {cpus: 2, memory: 4GiB}\nspec-rules: deny\n")
                                   .string();
    const std::string spec =
        project(directory, spec_text + "limits: {memory: 8GiB, cpus: 4}\n"
                                       "network:\n  build: [{host: pypi.org, protocol: https}]\n");
    const Outcome outcome = run({"build", spec}, directory.path() / "config");
    check_refused(outcome, spec + ": the spec asks for more than your config allows: cpus 4 "
                                  "(ceiling 2), memory 8 GiB (ceiling 4 GiB), network rule "
                                  "https://pypi.org:443 while building (spec-rules: deny)");
    CHECK_THAT(outcome.err, Contains(config));
}

// Tests for spec/spec_paths.hpp: a spec's paths stay beneath its folder (or a root the config
// allows) and are never followed through a symlink below it.
#include "spec/spec_paths.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

using namespace contractor;
using Catch::Matchers::Contains;
using contractor::spec::PathError;
using contractor::spec::resolve_spec_path;
using contractor::test::TemporaryDirectory;
namespace fs = std::filesystem;

namespace {

// The PathError's message for `value`, or "accepted".
std::string refusal(const fs::path& directory, const std::string& value,
                    const std::vector<fs::path>& roots = {}) {
    try {
        resolve_spec_path(directory, value, roots);
    } catch (const PathError& error) {
        return error.what();
    }
    return "accepted";
}

} // namespace

TEST_CASE("paths beneath the spec's folder are made absolute", "[spec-paths]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    fs::create_directories(root / "src");
    CHECK(resolve_spec_path(root, "src", {}) == root / "src");
    CHECK(resolve_spec_path(root, ".", {}) == root);
    CHECK(resolve_spec_path(root, "./", {}) == root);
    CHECK(resolve_spec_path(root, "ws/", {}) == root / "ws");
    CHECK(resolve_spec_path(root, "src/../ws", {}) == root / "ws");
    // Not there yet: the export creates it.
    CHECK(resolve_spec_path(root, "out/deeper/ws", {}) == root / "out" / "deeper" / "ws");
    // An absolute path into the spec's own folder stays there.
    CHECK(resolve_spec_path(root, (root / "src").string(), {}) == root / "src");
    // The spec's folder as written, e.g. from "./spec.yaml".
    CHECK(resolve_spec_path(root / ".", "ws", {}) == root / "ws");
}

TEST_CASE("absolute paths and '..' that leave the spec's folder are refused", "[spec-paths]") {
    const TemporaryDirectory directory;
    const fs::path spec_folder = directory.path() / "project";
    fs::create_directories(spec_folder);
    fs::create_directories(directory.path() / "outside");
    CHECK(refusal(spec_folder, "../outside") == "leaves the spec's folder " + spec_folder.string());
    CHECK(refusal(spec_folder, "ws/../../outside") ==
          "leaves the spec's folder " + spec_folder.string());
    CHECK(refusal(spec_folder, "..") == "leaves the spec's folder " + spec_folder.string());
    CHECK(refusal(spec_folder, "/etc") ==
          "is an absolute path outside the spec's folder " + spec_folder.string());
    CHECK(refusal(spec_folder, (directory.path() / "outside").string()) ==
          "is an absolute path outside the spec's folder " + spec_folder.string());
    // A sibling whose name starts like the spec's folder is still outside.
    CHECK(refusal(spec_folder, "../project-other") ==
          "leaves the spec's folder " + spec_folder.string());
}

TEST_CASE("a symlink below the spec's folder is refused wherever it is", "[spec-paths]") {
    const TemporaryDirectory directory;
    const fs::path spec_folder = directory.path() / "project";
    const fs::path outside = directory.path() / "home" / ".ssh";
    fs::create_directories(spec_folder / "sub");
    fs::create_directories(outside);

    SECTION("the last component (a committed ws -> ../home/.ssh)") {
        fs::create_directory_symlink("../home/.ssh", spec_folder / "ws");
        CHECK_THAT(refusal(spec_folder, "ws"),
                   Contains("goes through the symlink '" + (spec_folder / "ws").string() +
                            "' (-> '../home/.ssh')"));
    }
    SECTION("a folder on the way") {
        fs::create_directory_symlink(outside, spec_folder / "link");
        CHECK_THAT(refusal(spec_folder, "link/ws"), Contains("goes through the symlink"));
        CHECK_THAT(refusal(spec_folder, "sub/../link/ws"), Contains("goes through the symlink"));
    }
    SECTION("even one that points inside the spec's folder") {
        fs::create_directory_symlink("sub", spec_folder / "ws");
        CHECK_THAT(refusal(spec_folder, "ws"), Contains("goes through the symlink"));
    }
    SECTION("a dangling one") {
        fs::create_symlink("nowhere", spec_folder / "ws");
        CHECK_THAT(refusal(spec_folder, "ws"), Contains("goes through the symlink"));
    }
    SECTION("a file image behind a symlink") {
        fs::create_symlink("/etc/passwd", spec_folder / "worker.img");
        CHECK_THAT(refusal(spec_folder, "worker.img"), Contains("goes through the symlink"));
    }
    SECTION("given as an absolute path into the spec's folder") {
        fs::create_directory_symlink(outside, spec_folder / "ws");
        CHECK_THAT(refusal(spec_folder, (spec_folder / "ws").string()),
                   Contains("goes through the symlink"));
    }
}

TEST_CASE("symlinks above the spec's folder are the user's own layout", "[spec-paths]") {
    const TemporaryDirectory directory;
    fs::create_directories(directory.path() / "real" / "project");
    fs::create_directory_symlink("real", directory.path() / "alias");
    const fs::path spec_folder = directory.path() / "alias" / "project";
    CHECK(resolve_spec_path(spec_folder, "ws", {}) == spec_folder / "ws");
    // The spec's folder may itself be a symlink.
    fs::create_directory_symlink("real/project", directory.path() / "project-link");
    CHECK(resolve_spec_path(directory.path() / "project-link", "src", {}) ==
          directory.path() / "project-link" / "src");
}

TEST_CASE("the config's allowed roots admit paths outside the spec's folder", "[spec-paths]") {
    const TemporaryDirectory directory;
    const fs::path spec_folder = directory.path() / "project";
    const fs::path shared = directory.path() / "shared";
    fs::create_directories(spec_folder);
    fs::create_directories(shared / "ws");
    const std::vector<fs::path> roots = {shared};

    CHECK(resolve_spec_path(spec_folder, "../shared/ws", roots) == shared / "ws");
    CHECK(resolve_spec_path(spec_folder, (shared / "cache").string(), roots) == shared / "cache");
    CHECK(resolve_spec_path(spec_folder, "../shared", roots) == shared);
    CHECK(refusal(spec_folder, "../elsewhere", roots) == "leaves the spec's folder " +
                                                             spec_folder.string() +
                                                             " and the folders your config allows");
    CHECK(refusal(spec_folder, "/etc", roots) == "is an absolute path outside the spec's folder " +
                                                     spec_folder.string() +
                                                     " and the folders your config allows");
    // '..' out of the root again.
    CHECK(refusal(spec_folder, "../shared/../elsewhere", roots) != "accepted");

    SECTION("a symlink below an allowed root is refused too") {
        fs::create_directory_symlink(directory.path() / "project", shared / "link");
        CHECK_THAT(refusal(spec_folder, "../shared/link/ws", roots),
                   Contains("goes through the symlink"));
    }
    SECTION("a root written through a symlink matches the real folder") {
        fs::create_directory_symlink("shared", directory.path() / "shared-alias");
        CHECK(resolve_spec_path(spec_folder, (shared / "ws").string(),
                                {directory.path() / "shared-alias"}) == shared / "ws");
    }
}

TEST_CASE("path origins have names", "[spec-paths]") {
    CHECK(spec::to_string(spec::PathOrigin::spec) == "spec");
    CHECK(spec::to_string(spec::PathOrigin::command_line) == "command line");
}

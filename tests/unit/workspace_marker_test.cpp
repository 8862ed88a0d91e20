// Tests for transfer/workspace_marker.hpp: which folders a build may replace with its export.
#include "temporary_directory.hpp"
#include "transfer/workspace_marker.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace contractor;
using contractor::test::TemporaryDirectory;
using contractor::transfer::classify_workspace;
using contractor::transfer::WorkspaceState;
namespace fs = std::filesystem;

TEST_CASE("a workspace is missing, empty, contractor's or foreign", "[workspace-marker]") {
    const TemporaryDirectory directory;
    const fs::path& root = directory.path();
    const std::string marker(transfer::workspace_marker_name);

    CHECK(marker == ".contractor-workspace");
    CHECK(classify_workspace(root / "ws") == WorkspaceState::missing);
    fs::create_directory(root / "ws");
    CHECK(classify_workspace(root / "ws") == WorkspaceState::empty);
    directory.write("ws/" + marker, "");
    directory.write("ws/cache/count", "1");
    CHECK(classify_workspace(root / "ws") == WorkspaceState::contractor);

    SECTION("a folder with files and no marker: the user's own") {
        directory.write("documents/letter.txt", "dear");
        CHECK(classify_workspace(root / "documents") == WorkspaceState::foreign);
    }
    SECTION("a file") {
        directory.write("file", "x");
        CHECK(classify_workspace(root / "file") == WorkspaceState::foreign);
    }
    SECTION("a symlink, even to a marked folder or an empty one") {
        fs::create_directory_symlink(root / "ws", root / "link");
        CHECK(classify_workspace(root / "link") == WorkspaceState::foreign);
        fs::create_directory(root / "empty");
        fs::create_directory_symlink(root / "empty", root / "link-to-empty");
        CHECK(classify_workspace(root / "link-to-empty") == WorkspaceState::foreign);
        fs::create_symlink(root / "nowhere", root / "dangling");
        CHECK(classify_workspace(root / "dangling") == WorkspaceState::foreign);
    }
    SECTION("a marker that is not a file does not count") {
        fs::create_directories(root / "a" / marker);
        directory.write("a/data", "x");
        CHECK(classify_workspace(root / "a") == WorkspaceState::foreign);
        fs::create_directories(root / "b");
        directory.write("b/data", "x");
        fs::create_symlink(root / "ws" / marker, root / "b" / marker);
        CHECK(classify_workspace(root / "b") == WorkspaceState::foreign);
    }
    SECTION("the marker can be written into an open folder") {
        fs::create_directory(root / "new");
        const int fd = ::open((root / "new").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        REQUIRE(fd >= 0);
        CHECK(transfer::write_workspace_marker(fd) == 0);
        CHECK(transfer::write_workspace_marker(fd) == 0); // replaces its own
        ::close(fd);
        CHECK(fs::is_regular_file(root / "new" / marker));
        directory.write("new/output", "x");
        CHECK(classify_workspace(root / "new") == WorkspaceState::contractor);
    }
}

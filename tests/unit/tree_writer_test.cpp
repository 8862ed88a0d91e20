// Tests for transfer/tree_writer.hpp's rules against what would make the host run code: git
// metadata (.git folders and files, bare-repository layouts) and a forged workspace marker.
// Driven through SafeExtractor, which is how the writer is used.
#include "extract_helpers.hpp"
#include "temporary_directory.hpp"
#include "transfer/safe_extract.hpp"
#include "transfer/workspace_marker.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace contractor;
using namespace contractor::test;
using transfer::ExtractResult;

namespace {

const std::string git_folder(transfer::git_folder_reason);
const std::string git_link(transfer::git_link_reason);
const std::string bare(transfer::bare_repository_reason);

// The paths reported as refused, in order.
std::vector<std::string> refused_paths(const ExtractResult& result) {
    std::vector<std::string> paths;
    for (const auto& rejected : result.rejected) {
        paths.push_back(rejected.path);
    }
    return paths;
}

// A bare repository's entries in the order `order` names them (H: HEAD, O: objects/, R:
// refs/, C: config), below `folder` ("" for the root).
std::string bare_repository(const std::string& folder, const std::string& order) {
    TarBuilder tar;
    for (const char part : order) {
        switch (part) {
        case 'H':
            tar.file(folder + "HEAD", "ref: refs/heads/main\n");
            break;
        case 'O':
            tar.directory(folder + "objects");
            break;
        case 'R':
            tar.directory(folder + "refs").directory(folder + "refs/heads");
            break;
        case 'C':
            tar.file(folder + "config", "[core]\n\tfsmonitor = touch /tmp/canary\n");
            break;
        }
    }
    tar.file("other.txt", "kept");
    return tar.finish();
}

} // namespace

TEST_CASE(".git folders are refused at any depth, reported once each", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result = extract(target, TarBuilder()
                                                     .directory(".git")
                                                     .file(".git/config", "[core]\n")
                                                     .directory(".git/hooks")
                                                     .file(".git/hooks/post-checkout", "#!/bin/sh")
                                                     .file("src/main.c", "int main;")
                                                     .file("src/lib/.git/config", "[core]\n")
                                                     .file("src/lib/.git/HEAD", "ref: x\n")
                                                     .file("src/lib/.GIT/config", "[core]\n")
                                                     .file("src/lib/code.c", "code")
                                                     .finish());
    CHECK(refused_paths(result) ==
          std::vector<std::string>{".git", "src/lib/.git", "src/lib/.GIT"});
    CHECK(reasons_for(result, ".git") == git_folder);
    CHECK(reasons_for(result, "src/lib/.git") == git_folder);
    CHECK(tree_of(target) ==
          std::map<std::string, char>{
              {"src", 'd'}, {"src/lib", 'd'}, {"src/lib/code.c", 'f'}, {"src/main.c", 'f'}});
    CHECK(result.entries == 2);
}

TEST_CASE("a .git file or symlink is refused", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result =
        extract(target, TarBuilder()
                            .file("checkout/.git", "gitdir: ../elsewhere\n")
                            .file("checkout/readme", "r")
                            .symlink("linked/.git", "../elsewhere")
                            .directory("elsewhere")
                            .finish());
    CHECK(reasons_for(result, "checkout/.git") == git_link);
    CHECK(reasons_for(result, "linked/.git") == git_link);
    CHECK(result.rejected.size() == 2);
    CHECK_FALSE(fs::exists(fs::symlink_status(target / "checkout" / ".git")));
    CHECK_FALSE(fs::exists(fs::symlink_status(target / "linked" / ".git")));
    CHECK(read(target / "checkout" / "readme") == "r");
}

TEST_CASE("a bare repository layout loses its HEAD, whatever the entry order", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const std::string order = GENERATE(as<std::string>{}, "HORC", "ORCH", "RHOC", "COHR", "CROH");
    INFO("entry order " << order);
    SECTION("in a folder") {
        const fs::path target = temporary.path() / "ws";
        const ExtractResult result = extract(target, bare_repository("mirror.git/", order));
        CHECK(refused_paths(result) == std::vector<std::string>{"mirror.git/HEAD"});
        CHECK(reasons_for(result, "mirror.git/HEAD") == bare);
        // The rest stays: without HEAD, git does not take the folder for a repository.
        CHECK(tree_of(target) == std::map<std::string, char>{{"mirror.git", 'd'},
                                                             {"mirror.git/config", 'f'},
                                                             {"mirror.git/objects", 'd'},
                                                             {"mirror.git/refs", 'd'},
                                                             {"mirror.git/refs/heads", 'd'},
                                                             {"other.txt", 'f'}});
    }
    SECTION("at the workspace's root") {
        const fs::path target = temporary.path() / "ws";
        const ExtractResult result = extract(target, bare_repository("", order));
        CHECK(refused_paths(result) == std::vector<std::string>{"HEAD"});
        CHECK_FALSE(fs::exists(fs::symlink_status(target / "HEAD")));
        CHECK(fs::exists(target / "config"));
    }
}

TEST_CASE("bare layouts are recognised as git recognises them", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result =
        extract(target, TarBuilder()
                            // objects/ only implied by a deeper entry; HEAD a symlink.
                            .symlink("implied/HEAD", "refs/heads/main")
                            .file("implied/objects/ab/cdef", "blob")
                            .file("implied/refs/heads/main", "0123")
                            // objects and refs may be anything git can access(): links too.
                            .file("links/HEAD", "ref: refs/heads/main\n")
                            .symlink("links/objects", "../implied/objects")
                            .symlink("links/refs", "../implied/refs")
                            // A worktree-style folder: HEAD and commondir are enough.
                            .file("worktree/HEAD", "0123\n")
                            .file("worktree/commondir", "../implied\n")
                            // Case does not matter (a case-insensitive file system).
                            .file("upper/head", "ref: refs/heads/main\n")
                            .directory("upper/OBJECTS")
                            .directory("upper/Refs")
                            .finish());
    CHECK(reasons_for(result, "implied/HEAD") == bare);
    CHECK(reasons_for(result, "links/HEAD") == bare);
    CHECK(reasons_for(result, "worktree/HEAD") == bare);
    CHECK(reasons_for(result, "upper/head") == bare);
    CHECK(result.rejected.size() == 4);
    for (const char* folder : {"implied", "links", "worktree", "upper"}) {
        INFO(folder);
        CHECK(fs::exists(fs::symlink_status(target / folder)));
        CHECK_FALSE(fs::exists(fs::symlink_status(target / folder / "HEAD")));
        CHECK_FALSE(fs::exists(fs::symlink_status(target / folder / "head")));
    }
}

TEST_CASE("folders that are not bare repositories keep their HEAD", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result = extract(target, TarBuilder()
                                                     .file("no-refs/HEAD", "h")
                                                     .directory("no-refs/objects")
                                                     .file("no-objects/HEAD", "h")
                                                     .directory("no-objects/refs")
                                                     .file("apart/HEAD", "h")
                                                     .directory("apart/sub/objects")
                                                     .directory("apart/sub/refs")
                                                     .directory("folder-head/HEAD")
                                                     .directory("folder-head/objects")
                                                     .directory("folder-head/refs")
                                                     .finish());
    CHECK(result.rejected.empty());
    CHECK(fs::is_regular_file(target / "no-refs" / "HEAD"));
    CHECK(fs::is_regular_file(target / "no-objects" / "HEAD"));
    CHECK(fs::is_regular_file(target / "apart" / "HEAD"));
    CHECK(fs::is_directory(target / "folder-head" / "HEAD"));
}

TEST_CASE("allow-git lets git metadata through", "[transfer][git]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result = extract(target,
                                         TarBuilder()
                                             .file("repo/.git/config", "[core]\n")
                                             .file("checkout/.git", "gitdir: ../repo/.git\n")
                                             .file("bare/HEAD", "ref: refs/heads/main\n")
                                             .directory("bare/objects")
                                             .directory("bare/refs")
                                             .finish(),
                                         1 << 20, {.allow_git = true});
    CHECK(result.rejected.empty());
    CHECK(fs::is_regular_file(target / "repo" / ".git" / "config"));
    CHECK(fs::is_regular_file(target / "checkout" / ".git"));
    CHECK(fs::is_regular_file(target / "bare" / "HEAD"));
}

TEST_CASE("a workspace marker from the worker is refused", "[transfer][marker]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const std::string marker(transfer::workspace_marker_name);
    const ExtractResult result = extract(target, TarBuilder()
                                                     .file(marker, "forged")
                                                     .file("./" + marker, "forged again")
                                                     .file(marker + "/inside", "x")
                                                     .file("sub/" + marker, "an ordinary file")
                                                     .finish());
    CHECK(refused_paths(result) ==
          std::vector<std::string>{marker, "./" + marker, marker + "/inside"});
    CHECK(reasons_for(result, marker) == std::string(transfer::marker_reason));
    // contractor's own marker is there, not the worker's.
    CHECK(fs::is_regular_file(fs::symlink_status(target / marker)));
    CHECK(read(target / marker).find("forged") == std::string::npos);
    CHECK(read(target / "sub" / marker) == "an ordinary file");
}

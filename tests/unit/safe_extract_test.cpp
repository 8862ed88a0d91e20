#include "extract_helpers.hpp"
#include "temporary_directory.hpp"
#include "transfer/pack.hpp"
#include "transfer/safe_extract.hpp"
#include "util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

using namespace contractor;
using contractor::test::TemporaryDirectory;
using transfer::ExtractResult;
using transfer::SafeExtractor;

namespace fs = std::filesystem;
using namespace contractor::test;

TEST_CASE("a packed tree comes back identical through SafeExtractor", "[transfer]") {
    const TemporaryDirectory temporary;
    const fs::path source = temporary.path() / "src";
    temporary.write("src/top.txt", "top");
    temporary.write("src/empty", "");
    fs::create_directories(source / "emptydir");
    temporary.write("src/a/b/c/deep.txt", "deep");
    fs::create_symlink("../../top.txt", source / "a" / "b" / "up");
    fs::create_symlink("a/b", source / "link");
    fs::create_symlink("missing", source / "dangling");
    std::string big(5 * 1024 * 1024, '\0');
    std::mt19937 random(7);
    for (char& byte : big) {
        byte = static_cast<char>(random());
    }
    temporary.write("src/big.bin", big);
    temporary.write("src/h1", "linked");
    fs::create_hard_link(source / "h1", source / "h2");
    temporary.write("src/script.sh", "#!/bin/sh\n");
    fs::permissions(source / "script.sh", fs::perms(0755));
    temporary.write("src/secret", "s");
    fs::permissions(source / "secret", fs::perms(0600));
    temporary.write("src/readonly.txt", "r");
    fs::permissions(source / "readonly.txt", fs::perms(0444));
    temporary.write("src/private/inside.txt", "p");
    fs::permissions(source / "private", fs::perms(0700));
    temporary.write("src/locked/kept.txt", "k");
    fs::permissions(source / "locked", fs::perms(0555));
    temporary.write("src/name with spaces and \xc3\xbcnic\xc3\xb6"
                    "de.txt",
                    "u");
    const std::string long_name = std::string(120, 'd') + "/" + std::string(140, 'f');
    temporary.write("src/" + long_name, "long");
    const timespec old_times[2] = {{1'234'567'890, 0}, {1'234'567'890, 0}};
    REQUIRE(utimensat(AT_FDCWD, (source / "top.txt").c_str(), old_times, 0) == 0);
    REQUIRE(utimensat(AT_FDCWD, (source / "a" / "b").c_str(), old_times, 0) == 0);

    std::string tar;
    const auto stats =
        transfer::pack_tree({{source, "", {}, {}}},
                            [&](const char* data, std::size_t size) { tar.append(data, size); });
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result = extract(target, tar);

    CHECK(result.rejected.empty());
    CHECK(result.entries == stats.entries);
    CHECK(result.bytes == stats.bytes);
    CHECK(names_in(temporary.path()) == std::set<std::string>{"src", "ws"});
    CHECK(tree_of(target) == tree_of(source));
    for (const auto& [relative, type] : tree_of(source)) {
        INFO(relative);
        const struct stat original = lstat_of(source / relative);
        const struct stat copy = lstat_of(target / relative);
        CHECK(copy.st_mode == original.st_mode);
        CHECK(copy.st_mtim.tv_sec == original.st_mtim.tv_sec);
        if (type == 'f') {
            CHECK(read(target / relative) == read(source / relative));
        } else if (type == 'l') {
            CHECK(fs::read_symlink(target / relative) == fs::read_symlink(source / relative));
        }
    }
    CHECK(lstat_of(target / "h1").st_ino == lstat_of(target / "h2").st_ino);
    CHECK(read(target / "link" / "up") == "top");
    CHECK(perm_of(target) == 0755); // a new workspace gets the usual mode
    CHECK(fs::is_regular_file(fs::symlink_status(target / ".contractor-workspace")));
    make_removable(temporary.path());
}

TEST_CASE("a hostile archive writes nothing outside the workspace", "[transfer]") {
    const TemporaryDirectory temporary;
    const std::string pwned = "contractor-pwned-" + std::to_string(getpid()) + "-" +
                              std::to_string(std::random_device()());
    const std::string tar = TarBuilder()
                                .file("good.txt", "good")
                                .file("../escape-" + pwned, "x")
                                .file("/tmp/abs-" + pwned, "x")
                                .symlink("etc", "/etc")
                                .file("etc/" + pwned, "x")
                                .symlink("a", "b")
                                .symlink("b", "c")
                                .symlink("c", "../../..")
                                .symlink("dirlink", "/tmp")
                                .file("dirlink/" + pwned, "x")
                                .hardlink("passwd", "/etc/passwd")
                                .special("fifo", AE_IFIFO)
                                .special("null", AE_IFCHR)
                                .special("disk", AE_IFBLK)
                                .directory("sub")
                                .file("sub/good2.txt", "good too")
                                .finish();
    const auto before = names_in(temporary.path());
    const fs::path target = temporary.path() / "ws";
    ExtractResult result;
    {
        SafeExtractor extractor(target, 1 << 20);
        result = extractor.extract(source_of(tar));
        const fs::path work = extractor.temporary_directory();
        CHECK(work.parent_path() == temporary.path());
        CHECK(work.filename().string().starts_with(".ws.contractor-"));
        auto during = before;
        during.insert(work.filename().string());
        CHECK(names_in(temporary.path()) == during);
        extractor.commit();
    }
    auto after = before;
    after.insert("ws");
    CHECK(names_in(temporary.path()) == after);
    CHECK_FALSE(fs::exists(fs::symlink_status("/tmp/" + pwned)));
    CHECK_FALSE(fs::exists(fs::symlink_status("/tmp/abs-" + pwned)));
    CHECK_FALSE(fs::exists(fs::symlink_status("/etc/" + pwned)));

    CHECK(reasons_for(result, "../escape-" + pwned) == "path leaves the workspace");
    CHECK(reasons_for(result, "/tmp/abs-" + pwned) == "absolute path");
    CHECK_THAT(reasons_for(result, "etc"), Catch::Contains("symlink points outside"));
    CHECK(reasons_for(result, "etc/" + pwned) == "a parent directory is a symlink");
    CHECK(reasons_for(result, "c") == "symlink points outside the workspace");
    CHECK_THAT(reasons_for(result, "dirlink"), Catch::Contains("symlink points outside"));
    CHECK(reasons_for(result, "dirlink/" + pwned) == "a parent directory is a symlink");
    CHECK(reasons_for(result, "passwd") == "hardlink to a file outside the workspace");
    CHECK(reasons_for(result, "fifo") == "FIFO");
    CHECK(reasons_for(result, "null") == "device node");
    CHECK(reasons_for(result, "disk") == "device node");
    CHECK(result.rejected.size() == 11);

    // What stays: the good files, and a -> b -> (missing) c, dangling but inside.
    CHECK(tree_of(target) ==
          std::map<std::string, char>{
              {"a", 'l'}, {"b", 'l'}, {"good.txt", 'f'}, {"sub", 'd'}, {"sub/good2.txt", 'f'}});
    CHECK(result.entries == 5);
    CHECK(read(target / "good.txt") == "good");
    CHECK(read(target / "sub" / "good2.txt") == "good too");
    CHECK(lstat_of(target / "good.txt").st_uid == geteuid()); // ownership never applied
}

TEST_CASE("nothing is written through a symlink, even one pointing inside", "[transfer]") {
    const TemporaryDirectory temporary;
    const ExtractResult result = extract(temporary.path() / "ws", TarBuilder()
                                                                      .directory("inner")
                                                                      .symlink("link", "inner")
                                                                      .file("link/x", "through")
                                                                      .file("inner/y", "y")
                                                                      .file("plain", "p")
                                                                      .file("plain/z", "z")
                                                                      .finish());
    const fs::path target = temporary.path() / "ws";
    CHECK(reasons_for(result, "link/x") == "a parent directory is a symlink");
    CHECK(reasons_for(result, "plain/z") == "a parent directory is not a directory");
    CHECK(result.rejected.size() == 2);
    CHECK(tree_of(target) == std::map<std::string, char>{
                                 {"inner", 'd'}, {"inner/y", 'f'}, {"link", 'l'}, {"plain", 'f'}});
}

TEST_CASE("symlinks are checked as the kernel resolves them, through chains", "[transfer]") {
    const TemporaryDirectory temporary;
    const ExtractResult result =
        extract(temporary.path() / "ws", TarBuilder()
                                             .directory("d")
                                             .file("d/file", "f")
                                             .symlink("d/x", "..")       // the root: fine
                                             .symlink("d/y", "x/..")     // root/..: escapes
                                             .symlink("d/z", "x/d/x/..") // escapes too
                                             .symlink("d/up", "../d/file")
                                             .symlink("ok", "d/x/d/file")
                                             .symlink("loop1", "loop2")
                                             .symlink("loop2", "loop1")
                                             .symlink("dangling", "nowhere/at/all")
                                             .finish());
    const fs::path target = temporary.path() / "ws";
    CHECK(reasons_for(result, "d/y") == "symlink points outside the workspace");
    CHECK(reasons_for(result, "d/z") == "symlink points outside the workspace");
    // Once loop1 is gone, loop2 merely dangles.
    CHECK(reasons_for(result, "loop1") == "symlink loop");
    CHECK(result.rejected.size() == 3);
    CHECK(tree_of(target) == std::map<std::string, char>{{"d", 'd'},
                                                         {"d/file", 'f'},
                                                         {"d/up", 'l'},
                                                         {"d/x", 'l'},
                                                         {"dangling", 'l'},
                                                         {"loop2", 'l'},
                                                         {"ok", 'l'}});
    CHECK(read(target / "ok") == "f");
    CHECK(read(target / "d" / "up") == "f");
}

TEST_CASE("hardlinks may only name a file extracted before them", "[transfer]") {
    const TemporaryDirectory temporary;
    const ExtractResult result =
        extract(temporary.path() / "ws", TarBuilder()
                                             .file("data", "shared")
                                             .hardlink("same", "data")
                                             .hardlink("deep/same", "./data")
                                             .hardlink("early", "later")
                                             .file("later", "l")
                                             .directory("dir")
                                             .hardlink("to-dir", "dir")
                                             .symlink("sl", "data")
                                             .hardlink("to-link", "sl")
                                             .hardlink("up", "../data")
                                             .finish());
    const fs::path target = temporary.path() / "ws";
    const auto inode = lstat_of(target / "data").st_ino;
    CHECK(lstat_of(target / "same").st_ino == inode);
    CHECK(lstat_of(target / "deep" / "same").st_ino == inode);
    const std::string not_before = "hardlink to something that is not a file extracted before it";
    CHECK(reasons_for(result, "early") == not_before);
    CHECK(reasons_for(result, "to-dir") == not_before);
    CHECK(reasons_for(result, "to-link") == not_before);
    CHECK(reasons_for(result, "up") == "hardlink to a file outside the workspace");
    CHECK(result.rejected.size() == 4);
}

TEST_CASE("special mode bits are stripped and reported, ownership is never applied", "[transfer]") {
    const TemporaryDirectory temporary;
    const ExtractResult result = extract(temporary.path() / "ws", TarBuilder()
                                                                      .file("suid", "x", 04755)
                                                                      .file("both", "x", 06750)
                                                                      .directory("shared", 01777)
                                                                      .file("plain", "x", 0640)
                                                                      .directory("ro", 0555)
                                                                      .file("ro/inside", "i", 0444)
                                                                      .directory("closed", 0)
                                                                      .file("closed/f", "f")
                                                                      .finish());
    const fs::path target = temporary.path() / "ws";
    CHECK(reasons_for(result, "suid") == "setuid bit removed");
    CHECK(reasons_for(result, "both") == "setuid/setgid bits removed");
    CHECK(reasons_for(result, "shared/") == "sticky bit removed"); // as the stream names it
    CHECK(result.rejected.size() == 3);
    CHECK(result.entries == 8);
    CHECK(perm_of(target / "suid") == 0755);
    CHECK(perm_of(target / "both") == 0750);
    CHECK(perm_of(target / "shared") == 0777);
    CHECK(perm_of(target / "plain") == 0640);
    CHECK(perm_of(target / "ro") == 0555);
    CHECK(perm_of(target / "ro" / "inside") == 0444);
    CHECK(perm_of(target / "closed") == 0);
    // Directory mtimes are set last, after their contents were written.
    CHECK(lstat_of(target / "ro").st_mtim.tv_sec == entry_mtime);
    CHECK(lstat_of(target / "plain").st_uid == geteuid());
    make_removable(temporary.path());
    CHECK(read(target / "closed" / "f") == "f");
}

TEST_CASE("a later entry replaces a file, and directories merge", "[transfer]") {
    const TemporaryDirectory temporary;
    const ExtractResult result =
        extract(temporary.path() / "ws", TarBuilder()
                                             .file("twice", "first")
                                             .file("twice", "second")
                                             .directory("merge", 0700)
                                             .file("merge/one", "1")
                                             .directory("merge", 0750)
                                             .file("merge/two", "2")
                                             .directory("dir")
                                             .file("dir", "a file over a directory")
                                             .file("becomes-dir", "f")
                                             .directory("becomes-dir")
                                             .file("becomes-dir/inside", "i")
                                             .file("target.txt", "original")
                                             .symlink("link", "target.txt")
                                             .file("link", "replaces the link")
                                             .directory(".")
                                             .file("./dot/./slash//name", "normalised")
                                             .finish());
    const fs::path target = temporary.path() / "ws";
    CHECK(read(target / "twice") == "second");
    CHECK(read(target / "merge" / "one") == "1");
    CHECK(read(target / "merge" / "two") == "2");
    CHECK(perm_of(target / "merge") == 0750);
    CHECK(reasons_for(result, "dir") == "a directory of that name is already there");
    CHECK(fs::is_directory(fs::symlink_status(target / "dir")));
    CHECK(read(target / "becomes-dir" / "inside") == "i");
    CHECK(read(target / "target.txt") == "original");
    CHECK(fs::is_regular_file(fs::symlink_status(target / "link")));
    CHECK(read(target / "link") == "replaces the link");
    CHECK(read(target / "dot" / "slash" / "name") == "normalised");
    CHECK(result.rejected.size() == 1);
}

TEST_CASE("odd names are refused", "[transfer]") {
    const TemporaryDirectory temporary;
    std::string deep;
    for (int i = 0; i < 300; ++i) {
        deep += "d/";
    }
    const ExtractResult result =
        extract(temporary.path() / "ws", TarBuilder()
                                             .file(".", "the root as a file")
                                             .file("a/../b", "x")
                                             .file(deep + "f", "x")
                                             .file(std::string(5000, 'n'), "x")
                                             .file("fine", "x")
                                             .finish());
    CHECK(reasons_for(result, ".") == "names the workspace itself");
    CHECK(reasons_for(result, "a/../b") == "path leaves the workspace");
    CHECK(reasons_for(result, deep + "f") == "path too deep");
    CHECK(reasons_for(result, std::string(5000, 'n')) == "path too long");
    CHECK(tree_of(temporary.path() / "ws") == std::map<std::string, char>{{"fine", 'f'}});
}

TEST_CASE("crossing the size limit stops reading and leaves nothing behind", "[transfer]") {
    const TemporaryDirectory temporary;
    TarBuilder builder;
    for (int i = 0; i < 10; ++i) {
        builder.file("file" + std::to_string(i), std::string(1024 * 1024, 'x'));
    }
    const std::string tar = builder.finish();
    const auto before = names_in(temporary.path());
    std::size_t delivered = 0;
    {
        SafeExtractor extractor(temporary.path() / "ws", 2 * 1024 * 1024 + 512 * 1024);
        try {
            extractor.extract(source_of(tar, &delivered));
            FAIL("no ExportTooLarge");
        } catch (const transfer::ExportTooLarge& error) {
            CHECK(error.limit() == 2 * 1024 * 1024 + 512 * 1024);
            CHECK(error.bytes_seen() == 3 * 1024 * 1024);
            CHECK(error.exit_code() == ExitCode::limit_exceeded);
            CHECK_THAT(error.what(), Catch::Contains("export-size limit"));
        }
    }
    CHECK(delivered < tar.size() / 2);
    CHECK(names_in(temporary.path()) == before);

    // Exactly at the limit is fine.
    const auto result = extract(temporary.path() / "ws",
                                TarBuilder().file("a", "12345").file("b", "67890").finish(), 10);
    CHECK(result.bytes == 10);
}

TEST_CASE("a broken or failing stream is never committed", "[transfer]") {
    const TemporaryDirectory temporary;
    const std::string tar =
        TarBuilder().file("a", "aaa").file("b", std::string(2000, 'b')).finish();
    const auto before = names_in(temporary.path());
    const auto attempt = [&](const transfer::ByteSource& source) {
        SafeExtractor extractor(temporary.path() / "ws", 1 << 20);
        extractor.extract(source);
        extractor.commit();
    };
    const std::string no_marker = tar.substr(0, tar.size() - 1024);
    CHECK_THROWS_WITH(attempt(source_of(no_marker)), Catch::Contains("ended early"));
    const std::string cut = tar.substr(0, 1500);
    CHECK_THROWS_AS(attempt(source_of(cut)), InfrastructureError);
    const std::string garbage(4096, 'x');
    CHECK_THROWS_AS(attempt(source_of(garbage)), InfrastructureError);
    const std::string empty;
    CHECK_THROWS_AS(attempt(source_of(empty)), InfrastructureError);
    CHECK_THROWS_AS(attempt([](char*, std::size_t) -> std::size_t { throw Interrupted(2); }),
                    Interrupted);
    CHECK(names_in(temporary.path()) == before);

    // An archive holding nothing but its end marker is a valid, empty workspace.
    const ExtractResult result = extract(temporary.path() / "ws", TarBuilder().finish());
    CHECK(result.entries == 0);
    CHECK(names_in(temporary.path() / "ws") == std::set<std::string>{".contractor-workspace"});
}

TEST_CASE("commit replaces an existing workspace, and no commit leaves it alone", "[transfer]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    temporary.write("ws/.contractor-workspace", "made by an earlier build");
    temporary.write("ws/old.txt", "old");
    temporary.write("ws/locked/kept", "k");
    fs::permissions(target / "locked", fs::perms(0555));
    fs::permissions(target, fs::perms(0750));
    const std::string tar = TarBuilder().file("new.txt", "new").finish();

    {
        SafeExtractor extractor(target, 1 << 20);
        CHECK_THROWS_AS(extractor.commit(), std::logic_error);
        extractor.extract(source_of(tar));
        CHECK_THROWS_AS(extractor.extract(source_of(tar)), std::logic_error);
    }
    CHECK(names_in(temporary.path()) == std::set<std::string>{"ws"});
    CHECK(read(target / "old.txt") == "old");

    extract(target, tar);
    CHECK(names_in(temporary.path()) == std::set<std::string>{"ws"});
    CHECK(tree_of(target) == std::map<std::string, char>{{"new.txt", 'f'}});
    CHECK(perm_of(target) == 0750); // the mode of the workspace it replaced
}

TEST_CASE("commit writes the workspace marker into a new or empty workspace",
          "[transfer][marker]") {
    const TemporaryDirectory temporary;
    const std::string tar = TarBuilder().file("out.txt", "built").finish();
    const fs::path marker(transfer::workspace_marker_name);
    SECTION("missing") {
        extract(temporary.path() / "ws", tar);
    }
    SECTION("an empty folder") {
        fs::create_directory(temporary.path() / "ws");
        extract(temporary.path() / "ws", tar);
    }
    SECTION("a folder with the marker") {
        temporary.write("ws" / marker, "");
        temporary.write("ws/stale.txt", "from the last build");
        extract(temporary.path() / "ws", tar);
    }
    const fs::path target = temporary.path() / "ws";
    CHECK(names_in(temporary.path()) == std::set<std::string>{"ws"});
    CHECK(names_in(target) == std::set<std::string>{"out.txt", marker.string()});
    CHECK(fs::is_regular_file(fs::symlink_status(target / marker)));
    CHECK(transfer::classify_workspace(target) == transfer::WorkspaceState::contractor);
}

TEST_CASE("commit refuses a target contractor did not make and touches nothing",
          "[transfer][marker]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const fs::path elsewhere = temporary.path() / "elsewhere";
    const std::string tar = TarBuilder().file("out.txt", "built").finish();
    std::string expected;
    SECTION("a folder with files but no marker") {
        temporary.write("ws/thesis.tex", "years of work");
        expected = "is a folder that contractor did not make";
    }
    SECTION("a symlink to a folder, even an empty one") {
        fs::create_directory(elsewhere);
        fs::create_directory_symlink(elsewhere, target);
        expected = "is a symlink";
    }
    SECTION("a symlink to a workspace contractor made") {
        temporary.write("elsewhere/.contractor-workspace", "");
        fs::create_directory_symlink(elsewhere, target);
        expected = "is a symlink";
    }
    SECTION("a file") {
        temporary.write("ws", "a file");
        expected = "is not a folder";
    }
    const auto tree_before = tree_of(temporary.path());
    {
        SafeExtractor extractor(target, 1 << 20);
        extractor.extract(source_of(tar));
        try {
            extractor.commit();
            FAIL("commit() replaced a foreign target");
        } catch (const transfer::ForeignWorkspace& error) {
            CHECK_THAT(error.what(), Catch::Contains(expected));
            CHECK_THAT(error.hint(), Catch::Contains("new or empty folder"));
            CHECK(error.exit_code() == ExitCode::usage);
        }
    }
    // Nothing touched, and the temporary folder is gone.
    CHECK(tree_of(temporary.path()) == tree_before);
}

TEST_CASE("a target that turns foreign while the build runs is refused at commit",
          "[transfer][marker]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    SafeExtractor extractor(target, 1 << 20);
    extractor.extract(source_of(TarBuilder().file("out.txt", "built").finish()));
    temporary.write("ws/notes.txt", "written by the user meanwhile");
    CHECK_THROWS_AS(extractor.commit(), transfer::ForeignWorkspace);
    CHECK(names_in(target) == std::set<std::string>{"notes.txt"});
}

TEST_CASE("a killed run's unfinished workspace folder is removed, a live one's kept",
          "[transfer]") {
    TemporaryDirectory scratch;
    const auto target = scratch.path() / "ws";
    // A process id that does not exist: pid_max is at most 2^22.
    const auto dead = scratch.path() / ".ws.contractor-99999999-abcdef";
    const auto live = scratch.path() / (".ws.contractor-" + std::to_string(getpid()) + "-abcdef");
    const auto other = scratch.path() / ".other.contractor-99999999-abcdef";
    for (const auto& folder : {dead, live, other}) {
        std::filesystem::create_directories(folder / "deep");
        std::ofstream(folder / "deep" / "file") << "half-written";
    }
    // A symlink inside is removed as a link, never followed.
    std::filesystem::create_directories(scratch.path() / "outside");
    std::ofstream(scratch.path() / "outside" / "keep") << "keep";
    std::filesystem::create_directory_symlink(scratch.path() / "outside", dead / "link");
    REQUIRE(transfer::remove_stale_temporaries(target) == 1);
    REQUIRE_FALSE(std::filesystem::exists(dead));
    REQUIRE(std::filesystem::exists(live / "deep" / "file"));
    REQUIRE(std::filesystem::exists(other / "deep" / "file"));
    REQUIRE(std::filesystem::exists(scratch.path() / "outside" / "keep"));
}

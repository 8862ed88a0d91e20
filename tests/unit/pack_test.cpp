#include "temporary_directory.hpp"
#include "transfer/pack.hpp"
#include "util/error.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <filesystem>
#include <stdexcept>
#include <sys/stat.h>
#include <unistd.h>

using namespace contractor;
using contractor::test::TemporaryDirectory;
using transfer::PackSource;

namespace {

namespace fs = std::filesystem;

// One entry of a tar stream, as a reader sees it.
struct Listed {
    std::string path; // without the trailing '/' of directories
    char type = '?';  // f(ile), d(irectory), l(ink), h(ardlink)
    mode_t perm = 0;
    std::string content;
    std::string link; // symlink or hardlink target
    la_int64_t uid = -1;
    la_int64_t gid = -1;
    bool has_owner_names = false;
    time_t mtime = 0;
};

std::vector<Listed> list_tar(const std::string& tar) {
    std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(),
                                                                  &archive_read_free);
    archive_read_support_format_tar(reader.get());
    REQUIRE(archive_read_open_memory(reader.get(), tar.data(), tar.size()) == ARCHIVE_OK);
    std::vector<Listed> entries;
    archive_entry* entry = nullptr;
    int status = ARCHIVE_OK;
    while ((status = archive_read_next_header(reader.get(), &entry)) == ARCHIVE_OK) {
        Listed listed;
        listed.path = archive_entry_pathname(entry);
        if (listed.path.ends_with('/')) {
            listed.path.pop_back();
        }
        listed.perm = archive_entry_perm(entry);
        listed.uid = archive_entry_uid(entry);
        listed.gid = archive_entry_gid(entry);
        const char* uname = archive_entry_uname(entry);
        const char* gname = archive_entry_gname(entry);
        listed.has_owner_names =
            (uname != nullptr && *uname != '\0') || (gname != nullptr && *gname != '\0');
        listed.mtime = archive_entry_mtime(entry);
        if (const char* hardlink = archive_entry_hardlink(entry)) {
            listed.type = 'h';
            listed.link = hardlink;
        } else if (archive_entry_filetype(entry) == AE_IFDIR) {
            listed.type = 'd';
        } else if (archive_entry_filetype(entry) == AE_IFLNK) {
            listed.type = 'l';
            listed.link = archive_entry_symlink(entry);
        } else if (archive_entry_filetype(entry) == AE_IFREG) {
            listed.type = 'f';
            listed.content.resize(static_cast<std::size_t>(archive_entry_size(entry)));
            if (!listed.content.empty()) {
                archive_read_data(reader.get(), listed.content.data(), listed.content.size());
            }
        }
        entries.push_back(std::move(listed));
    }
    CHECK(status == ARCHIVE_EOF);
    return entries;
}

std::vector<std::string> paths_of(const std::vector<Listed>& entries) {
    std::vector<std::string> paths;
    for (const Listed& entry : entries) {
        paths.push_back(entry.path);
    }
    return paths;
}

// pack_tree into a string; `chunks` gets the size of every call to the sink.
std::string pack(const std::vector<PackSource>& sources, transfer::PackStats* stats = nullptr,
                 std::vector<std::size_t>* chunks = nullptr) {
    std::string tar;
    const auto result = transfer::pack_tree(sources, [&](const char* data, std::size_t size) {
        tar.append(data, size);
        if (chunks != nullptr) {
            chunks->push_back(size);
        }
    });
    if (stats != nullptr) {
        *stats = result;
    }
    return tar;
}

void set_mtime(const fs::path& path, time_t seconds) {
    const timespec times[2] = {{seconds, 0}, {seconds, 0}};
    REQUIRE(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

} // namespace

TEST_CASE("pack_tree writes a sorted pax stream with modes, mtimes and no owners", "[transfer]") {
    const TemporaryDirectory temporary;
    const fs::path tree = temporary.path() / "tree";
    temporary.write("tree/b.txt", "bee");
    temporary.write("tree/a/x.txt", "ex");
    temporary.write("tree/a/y/z", "");
    temporary.write("tree/run.sh", "#!/bin/sh\n");
    fs::permissions(tree / "run.sh", fs::perms(0750));
    fs::create_symlink("a", tree / "link");
    REQUIRE(mkfifo((tree / "fifo").c_str(), 0600) == 0);
    set_mtime(tree / "b.txt", 1'600'000'000);

    transfer::PackStats stats;
    const auto entries = list_tar(pack({{tree, "src", {}, {}}}, &stats));
    // The FIFO is skipped; the symlink to a directory is packed as a symlink, not followed.
    CHECK(paths_of(entries) == std::vector<std::string>{"src", "src/a", "src/a/x.txt", "src/a/y",
                                                        "src/a/y/z", "src/b.txt", "src/link",
                                                        "src/run.sh"});
    CHECK(stats.entries == entries.size());
    CHECK(stats.bytes == 3 + 2 + 10);
    for (const Listed& entry : entries) {
        CHECK(entry.uid == 0);
        CHECK(entry.gid == 0);
        CHECK_FALSE(entry.has_owner_names);
    }
    CHECK(entries[0].type == 'd');
    CHECK(entries[2].content == "ex");
    CHECK(entries[4].type == 'f');
    CHECK(entries[4].content.empty());
    CHECK(entries[5].mtime == 1'600'000'000);
    CHECK(entries[6].type == 'l');
    CHECK(entries[6].link == "a");
    CHECK(entries[7].perm == 0750);
}

TEST_CASE("pack_tree leaves out excluded patterns and skipped paths", "[transfer]") {
    const TemporaryDirectory temporary;
    const fs::path tree = temporary.path() / "tree";
    temporary.write("tree/main.c", "int main;");
    temporary.write("tree/main.o", "obj");
    temporary.write("tree/lib/util.o", "obj");
    temporary.write("tree/build/out", "built");
    temporary.write("tree/lib/build", "a file called build");
    temporary.write("tree/docs/draft.tmp", "draft");
    temporary.write("tree/lib/docs/kept.tmp", "kept: the pattern is anchored");
    temporary.write("tree/ws/result", "the workspace inside the source tree");
    temporary.write("tree/ws2/result", "not the workspace");

    // The skip path is spelled differently from the walk's paths: matched by inode.
    const fs::path skip = tree / "lib" / ".." / "ws";
    const auto entries = list_tar(pack({{tree, "", {"*.o", "build/", "/docs/*.tmp"}, {skip}}}));
    CHECK(paths_of(entries) == std::vector<std::string>{"docs", "lib", "lib/build", "lib/docs",
                                                        "lib/docs/kept.tmp", "main.c", "ws2",
                                                        "ws2/result"});
}

TEST_CASE("pack_tree packs several sources in order and keeps hardlinks", "[transfer]") {
    const TemporaryDirectory temporary;
    temporary.write("source/one", "1");
    temporary.write("source/two", "2");
    fs::create_hard_link(temporary.path() / "source" / "one", temporary.path() / "source" / "uno");
    temporary.write("saved/state", "s");

    transfer::PackStats stats;
    const auto entries = list_tar(pack(
        {{temporary.path() / "source", "src", {}, {}}, {temporary.path() / "saved", "", {}, {}}},
        &stats));
    CHECK(paths_of(entries) ==
          std::vector<std::string>{"src", "src/one", "src/two", "src/uno", "state"});
    CHECK(entries[1].type == 'f');
    CHECK(entries[3].type == 'h');
    CHECK(entries[3].link == "src/one");
    CHECK(entries[3].content.empty());
    CHECK(stats.bytes == 3); // the hardlinked content once
}

TEST_CASE("pack_tree hands the sink big blocks and ends the stream exactly", "[transfer]") {
    const TemporaryDirectory temporary;
    temporary.write("tree/big", std::string(5 * 1024 * 1024 + 17, 'x'));
    std::vector<std::size_t> chunks;
    const std::string tar = pack({{temporary.path() / "tree", "", {}, {}}}, nullptr, &chunks);
    REQUIRE(chunks.size() > 2);
    for (std::size_t i = 0; i + 1 < chunks.size(); ++i) {
        CHECK(chunks[i] == 256 * 1024);
    }
    // No padding after the end-of-archive marker: two zero blocks end the stream.
    CHECK(tar.size() % 512 == 0);
    CHECK(tar.substr(tar.size() - 1024) == std::string(1024, '\0'));
    const auto entries = list_tar(tar);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].content.size() == 5 * 1024 * 1024 + 17);
}

TEST_CASE("pack_tree reports a missing source, an unreadable file and a failing sink",
          "[transfer]") {
    const TemporaryDirectory temporary;
    CHECK_THROWS_AS(pack({{temporary.path() / "missing", "", {}, {}}}), UsageError);
    temporary.write("file", "not a directory");
    CHECK_THROWS_AS(pack({{temporary.path() / "file", "", {}, {}}}), UsageError);

    temporary.write("tree/a", std::string(600 * 1024, 'a'));
    temporary.write("tree/b", "b");
    int calls = 0;
    const auto failing_sink = [&](const char*, std::size_t) {
        if (++calls == 2) {
            throw std::runtime_error("connection lost");
        }
    };
    CHECK_THROWS_WITH(transfer::pack_tree({{temporary.path() / "tree", "", {}, {}}}, failing_sink),
                      "connection lost");
    CHECK(calls == 2); // nothing more reached the sink after it failed

    if (geteuid() != 0) { // root reads everything
        temporary.write("locked/secret", "s");
        fs::permissions(temporary.path() / "locked" / "secret", fs::perms::none);
        CHECK_THROWS_AS(pack({{temporary.path() / "locked", "", {}, {}}}), InfrastructureError);
    }
}

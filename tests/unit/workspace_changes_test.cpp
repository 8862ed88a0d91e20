// SafeExtractor's stream of changes: the worker sends only what the build changed against the
// input it was given, which the CLI extracted as the base (extract_base).
#include "extract_helpers.hpp"
#include "temporary_directory.hpp"
#include "transfer/safe_extract.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

using namespace contractor;
using namespace contractor::test;
using contractor::test::TemporaryDirectory;
using transfer::ExtractResult;
using transfer::SafeExtractor;

namespace {

// A list of removed paths, each ended by a NUL byte, as the worker writes it.
std::string removed(std::initializer_list<std::string> paths) {
    std::string list;
    for (const auto& path : paths) {
        list += path;
        list += '\0';
    }
    return list;
}

std::string base_tree() {
    return TarBuilder()
        .directory("src")
        .file("src/kept.c", "kept")
        .file("src/changed.c", "old")
        .file("src/gone.c", "gone")
        .directory("src/gone-dir")
        .file("src/gone-dir/a", "a")
        .directory("src/gone-dir/deeper")
        .file("src/gone-dir/deeper/b", "b")
        .file("out.bin", std::string(1000, 'o'))
        .finish();
}

ExtractResult apply(const fs::path& target, const std::string& base, const std::string& changes,
                    std::uint64_t limit = 1ULL << 32) {
    SafeExtractor extractor(target, limit);
    extractor.extract_base(source_of(base));
    REQUIRE(extractor.has_base());
    ExtractResult result = extractor.extract(source_of(changes));
    extractor.commit();
    return result;
}

} // namespace

TEST_CASE("a stream of changes keeps what it does not name, replaces, adds and removes",
          "[transfer][changes]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const std::string base = base_tree();
    const ExtractResult result =
        apply(target, base,
              TarBuilder()
                  .file(std::string(transfer::removed_list_name),
                        removed({"src/gone.c", "src/gone-dir", "never/there"}))
                  .directory("src", 0750)
                  .file("src/changed.c", "new")
                  .file("src/added.c", "added")
                  .directory("build")
                  .file("build/app", "binary", 0755)
                  .finish());
    CHECK(read(target / "src" / "kept.c") == "kept");
    CHECK(read(target / "src" / "changed.c") == "new");
    CHECK(read(target / "src" / "added.c") == "added");
    CHECK(read(target / "build" / "app") == "binary");
    CHECK(perm_of(target / "build" / "app") == 0755);
    CHECK(perm_of(target / "src") == 0750);
    CHECK(read(target / "out.bin") == std::string(1000, 'o'));
    CHECK_FALSE(fs::exists(fs::symlink_status(target / "src" / "gone.c")));
    CHECK_FALSE(fs::exists(fs::symlink_status(target / "src" / "gone-dir")));
    CHECK(names_in(target) == std::set<std::string>{"src", "out.bin", "build",
                                                    std::string(transfer::workspace_marker_name)});
    CHECK(result.rejected.empty());
    // The tree's content: kept 4 + changed 3 + added 5 + app 6 + out 1000.
    CHECK(result.bytes == 1018);
    CHECK(result.changes);
    CHECK(result.removed == 3);
    CHECK(result.changed == 5);
}

TEST_CASE("a whole stream after a base replaces it", "[transfer][changes]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result =
        apply(target, base_tree(), TarBuilder().file("only", "this").finish());
    CHECK_FALSE(result.changes);
    CHECK(result.bytes == 4);
    CHECK(names_in(target) ==
          std::set<std::string>{"only", std::string(transfer::workspace_marker_name)});
}

TEST_CASE("without a base, a list of removed paths is a refused marker entry",
          "[transfer][changes]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const ExtractResult result =
        extract(target, TarBuilder()
                            .file(std::string(transfer::removed_list_name), removed({"x"}))
                            .file("x", "kept")
                            .finish());
    CHECK(read(target / "x") == "kept");
    CHECK(reasons_for(result, std::string(transfer::removed_list_name)) == transfer::marker_reason);
}

TEST_CASE("removals stay inside the tree and never go through a symlink", "[transfer][changes]") {
    const TemporaryDirectory temporary;
    temporary.write("outside/victim", "v");
    temporary.write("ws-sibling", "s");
    const fs::path target = temporary.path() / "ws";
    const std::string base = TarBuilder()
                                 .directory("d")
                                 .file("d/in", "i")
                                 .symlink("link", "d")
                                 .file("plain", "p")
                                 .finish();
    const ExtractResult result =
        apply(target, base,
              TarBuilder()
                  .file(std::string(transfer::removed_list_name),
                        removed({"../ws-sibling", "/etc/passwd", "../outside/victim", "link/in",
                                 ".", "", "link"}))
                  .finish());
    CHECK(read(temporary.path() / "outside" / "victim") == "v");
    CHECK(read(temporary.path() / "ws-sibling") == "s");
    CHECK(read(target / "d" / "in") == "i");                      // not removed through the link
    CHECK_FALSE(fs::exists(fs::symlink_status(target / "link"))); // the link itself goes
    CHECK(read(target / "plain") == "p");
    CHECK(reasons_for(result, "../ws-sibling") == "removal refused: path leaves the workspace");
    CHECK(reasons_for(result, "/etc/passwd") == "removal refused: absolute path");
    CHECK(reasons_for(result, ".") == "removal refused: names the workspace itself");
}

TEST_CASE("export-size counts the whole resulting tree; a removal frees what it held",
          "[transfer][changes]") {
    const TemporaryDirectory temporary;
    const std::string base = TarBuilder()
                                 .file("a", std::string(400, 'a'))
                                 .file("b", std::string(400, 'b'))
                                 .file("linked", std::string(100, 'l'))
                                 .hardlink("link", "linked")
                                 .finish();
    SECTION("a change that takes the tree over the limit is refused") {
        SafeExtractor extractor(temporary.path() / "ws", 1000);
        extractor.extract_base(source_of(base));
        CHECK_THROWS_AS(
            extractor.extract(source_of(TarBuilder()
                                            .file(std::string(transfer::removed_list_name), "")
                                            .file("c", std::string(101, 'c'))
                                            .finish())),
            transfer::ExportTooLarge);
    }
    SECTION("a replaced file counts once, a removed one not at all") {
        const ExtractResult result =
            apply(temporary.path() / "ws", base,
                  TarBuilder()
                      .file(std::string(transfer::removed_list_name), removed({"b"}))
                      .file("a", std::string(450, 'A'))
                      .file("c", std::string(450, 'c'))
                      .finish(),
                  1000);
        CHECK(result.bytes == 1000);
    }
    SECTION("content still held by another link keeps counting") {
        SafeExtractor extractor(temporary.path() / "ws", 1000);
        extractor.extract_base(source_of(base));
        CHECK_THROWS_AS(extractor.extract(source_of(
                            TarBuilder()
                                .file(std::string(transfer::removed_list_name), removed({"linked"}))
                                .file("c", std::string(101, 'c'))
                                .finish())),
                        transfer::ExportTooLarge);
    }
    SECTION("a base over the limit is dropped: changes to it are refused as the base was") {
        SafeExtractor extractor(temporary.path() / "ws", 500);
        CHECK_THROWS_AS(extractor.extract_base(source_of(base)), transfer::ExportTooLarge);
        CHECK_FALSE(extractor.has_base());
        CHECK_THROWS_AS(extractor.extract(source_of(
                            TarBuilder()
                                .file(std::string(transfer::removed_list_name), removed({"a"}))
                                .file("small", "s")
                                .finish())),
                        transfer::ExportTooLarge);
    }
    SECTION("a base over the limit is dropped: a whole stream is taken as it is") {
        SafeExtractor extractor(temporary.path() / "ws", 500);
        CHECK_THROWS_AS(extractor.extract_base(source_of(base)), transfer::ExportTooLarge);
        const ExtractResult result =
            extractor.extract(source_of(TarBuilder().file("small", "s").finish()));
        extractor.commit();
        CHECK(names_in(temporary.path() / "ws") ==
              std::set<std::string>{"small", std::string(transfer::workspace_marker_name)});
        CHECK(result.rejected_total == 0);
    }
}

TEST_CASE("the base goes through the same rules, and a change cannot make a bare repository of it",
          "[transfer][changes]") {
    const TemporaryDirectory temporary;
    const fs::path target = temporary.path() / "ws";
    const std::string base = TarBuilder()
                                 .directory("src/.git")
                                 .file("src/.git/config", "[core]\n")
                                 .directory("notes")
                                 .file("notes/HEAD", "the user's own file")
                                 .finish();
    const ExtractResult result = apply(target, base,
                                       TarBuilder()
                                           .file(std::string(transfer::removed_list_name), "")
                                           .directory("notes/objects")
                                           .directory("notes/refs")
                                           .file("notes/config", "[core]\nfsmonitor = evil\n")
                                           .finish());
    CHECK_FALSE(fs::exists(target / "src" / ".git"));
    CHECK_FALSE(fs::exists(target / "notes" / "HEAD"));
    CHECK(reasons_for(result, "notes/HEAD") == transfer::bare_repository_reason);
}

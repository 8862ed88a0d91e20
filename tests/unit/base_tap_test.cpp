// BaseTap: the CLI's copy of the input, extracted in a thread of its own as the base that the
// worker's changes are applied to.
#include "cli/base_tap.hpp"
#include "extract_helpers.hpp"
#include "temporary_directory.hpp"
#include "transfer/safe_extract.hpp"

#include <catch2/catch.hpp>

using namespace contractor;
using namespace contractor::test;
using contractor::test::TemporaryDirectory;

namespace {

void feed_in_pieces(cli::BaseTap& tap, const std::string& stream) {
    for (std::size_t offset = 0; offset < stream.size(); offset += 1000) {
        tap.feed(stream.data() + offset, std::min<std::size_t>(1000, stream.size() - offset));
    }
}

} // namespace

TEST_CASE("the input's copy becomes the base the changes apply to", "[changes]") {
    const TemporaryDirectory temporary;
    const std::string input = TarBuilder()
                                  .directory("src")
                                  .file("src/a.c", std::string(300000, 'a'))
                                  .file("src/b.c", "b")
                                  .finish();
    transfer::SafeExtractor extractor(temporary.path() / "ws", 1 << 20);
    {
        cli::BaseTap tap(extractor, temporary.path());
        feed_in_pieces(tap, input);
        REQUIRE(tap.finish_sending());
        CHECK_FALSE(tap.wait());
    }
    REQUIRE(extractor.has_base());
    const std::string list = std::string("src/b.c") + '\0';
    const auto result =
        extractor.extract(source_of(TarBuilder()
                                        .file(std::string(transfer::removed_list_name), list)
                                        .file("out", "built")
                                        .finish()));
    extractor.commit();
    CHECK(result.changes);
    CHECK(read(temporary.path() / "ws" / "src" / "a.c") == std::string(300000, 'a'));
    CHECK_FALSE(fs::exists(temporary.path() / "ws" / "src" / "b.c"));
    CHECK(read(temporary.path() / "ws" / "out") == "built");
    // The copy was an unnamed file: nothing but the workspace is left in the folder.
    CHECK(names_in(temporary.path()) == std::set<std::string>{"ws"});
}

TEST_CASE("a copy that cannot become a base says why", "[changes]") {
    const TemporaryDirectory temporary;
    const std::string input = TarBuilder().file("big", std::string(2000, 'x')).finish();
    transfer::SafeExtractor extractor(temporary.path() / "ws", 1000);
    cli::BaseTap tap(extractor, temporary.path());
    feed_in_pieces(tap, input);
    REQUIRE(tap.finish_sending());
    const std::exception_ptr error = tap.wait();
    REQUIRE(error);
    CHECK_THROWS_AS(std::rethrow_exception(error), transfer::ExportTooLarge);
    CHECK_FALSE(extractor.has_base());
}

TEST_CASE("without a folder for the copy there is no base, and nothing waits", "[changes]") {
    const TemporaryDirectory temporary;
    transfer::SafeExtractor extractor(temporary.path() / "ws", 1000);
    cli::BaseTap tap(extractor, temporary.path() / "missing");
    tap.feed("abc", 3);
    CHECK_FALSE(tap.finish_sending());
    CHECK(tap.wait());
}

TEST_CASE("a tap dropped before the build ends stops its extraction", "[changes]") {
    const TemporaryDirectory temporary;
    TarBuilder builder;
    for (int i = 0; i < 2000; ++i) {
        builder.file("f" + std::to_string(i), "content");
    }
    const std::string input = builder.finish();
    transfer::SafeExtractor extractor(temporary.path() / "ws", 1 << 20);
    {
        cli::BaseTap tap(extractor, temporary.path());
        feed_in_pieces(tap, input);
        REQUIRE(tap.finish_sending());
    } // joined here, whether it finished or stopped
    // Whichever it was, a whole stream still makes the workspace, and only it.
    extractor.extract(source_of(TarBuilder().file("whole", "w").finish()));
    extractor.commit();
    CHECK(names_in(temporary.path() / "ws") ==
          std::set<std::string>{"whole", std::string(transfer::workspace_marker_name)});
}

#include "image/builder.hpp"
#include "image/cache.hpp"
#include "image/recipe.hpp"
#include "temporary_directory.hpp"
#include "util/error.hpp"

#include <catch2/catch.hpp>

#include <fstream>

using namespace contractor;
using contractor::test::TemporaryDirectory;

namespace {

void write(const std::filesystem::path& file, const std::string& text) {
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file) << text;
}

constexpr const char* recipe_text = "name: tiny\nsuite: bookworm\nvariant: minbase\n"
                                    "disk-size: 1GiB\npackages: [openssh-server]\n"
                                    "customize: customize\nfiles:\n  INIT: ../init\n"
                                    "init: /sbin/init\n";

} // namespace

TEST_CASE("a recipe is read with paths relative to its folder", "[image]") {
    const TemporaryDirectory temporary;
    const auto root = temporary.path();
    write(root / "tiny" / "recipe.yaml", recipe_text);
    const image::Recipe recipe = image::load_recipe(root, "tiny");
    CHECK(recipe.name == "tiny");
    CHECK(recipe.disk_size == 1024ULL * 1024 * 1024);
    CHECK(recipe.packages == std::vector<std::string>{"openssh-server"});
    CHECK(recipe.customize == root / "tiny" / "customize");
    REQUIRE(recipe.files.size() == 1);
    CHECK(recipe.files[0].first == "INIT");
    CHECK(recipe.files[0].second == root / "init");
    CHECK_THROWS_AS(image::load_recipe(root, "missing"), UsageError);
    CHECK_THROWS_AS(image::load_recipe(root, "../tiny"), UsageError);
}

TEST_CASE("the cache key changes with every input and nothing else", "[image]") {
    const TemporaryDirectory temporary;
    const auto root = temporary.path();
    write(root / "tiny" / "recipe.yaml", recipe_text);
    write(root / "tiny" / "customize", "#!/bin/sh\n");
    write(root / "init", "#!/bin/sh\n");
    const auto digest = [&](const std::vector<std::string>& extra = {}) {
        return image::recipe_digest(image::load_recipe(root, "tiny"), extra);
    };
    const std::string first = digest();
    CHECK(first.size() == 16);
    CHECK(digest() == first);
    CHECK(digest({"gcc", "make"}) == digest({"make", "gcc", "gcc"}));
    CHECK(digest({"gcc"}) != first);
    write(root / "init", "#!/bin/sh\necho changed\n");
    const std::string after_init = digest();
    CHECK(after_init != first);
    write(root / "tiny" / "customize", "#!/bin/sh\nexit 0\n");
    CHECK(digest() != after_init);
}

TEST_CASE("an entry without the kernel's and initrd's digests gets them", "[image]") {
    test::TemporaryDirectory root;
    const image::ImageCache cache(root.path());
    const auto staging = cache.make_staging();
    std::ofstream(staging / "disk.qcow2") << "disk";
    std::ofstream(staging / "vmlinuz") << "kernel";
    std::ofstream(staging / "initrd.img") << "initrd";
    image::CachedImage metadata;
    metadata.name = "worker";
    metadata.digest = "0123456789abcdef";
    metadata.disk_sha256 = "d";
    cache.commit(staging, metadata); // as an older contractor did: no boot digests
    auto entry = cache.find("worker", "0123456789abcdef");
    REQUIRE(entry);
    CHECK(entry->kernel_sha256.empty());
    cache.record_boot_digests(*entry);
    const auto again = cache.find("worker", "0123456789abcdef");
    REQUIRE(again);
    CHECK(again->kernel_sha256 == image::fresh_file_sha256(again->kernel(), {}));
    CHECK(again->initrd_sha256 == image::fresh_file_sha256(again->initrd(), {}));
    CHECK(again->kernel_sha256 != again->initrd_sha256);
    CHECK(again->disk_sha256 == "d");
}

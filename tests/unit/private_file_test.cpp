// Tests for util/private_file.hpp and util/folder_guard.hpp: files and folders that hold keys.
#include "temporary_directory.hpp"
#include "util/error.hpp"
#include "util/folder_guard.hpp"
#include "util/private_file.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <sys/stat.h>

namespace fs = std::filesystem;
using contractor::util::FolderGuard;
using contractor::util::write_private_file;

namespace {

std::string read(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

unsigned mode_of(const fs::path& file) {
    struct stat info {};
    REQUIRE(::stat(file.c_str(), &info) == 0);
    return info.st_mode & 07777U;
}

} // namespace

TEST_CASE("a private file is 0600 and replaces the old one whole") {
    const contractor::test::TemporaryDirectory folder;
    const fs::path key = folder.path() / "client_key";
    {
        std::ofstream old(key);
        old << "an older and much longer content";
    }
    fs::permissions(key, fs::perms::all);
    write_private_file(key, std::string("secret\0key", 10));
    CHECK(read(key) == std::string("secret\0key", 10));
    CHECK(mode_of(key) == 0600U);
    CHECK_FALSE(fs::exists(key.string() + ".tmp"));
}

TEST_CASE("a private file that cannot be written is an error naming it") {
    const contractor::test::TemporaryDirectory folder;
    const fs::path missing = folder.path() / "no-such-folder" / "key";
    try {
        write_private_file(missing, "x");
        FAIL("no error");
    } catch (const contractor::InfrastructureError& error) {
        CHECK(std::string(error.what()).find("no-such-folder") != std::string::npos);
        CHECK(std::string(error.what()).find("No such file") != std::string::npos);
    }
}

TEST_CASE("a temporary folder is private and goes away with its guard") {
    fs::path path;
    {
        const auto guard = FolderGuard::make_temporary("contractor-unit");
        path = guard.path();
        REQUIRE(fs::is_directory(path));
        CHECK(mode_of(path) == 0700U);
        std::ofstream(path / "socket-stand-in") << "x";
    }
    CHECK_FALSE(fs::exists(path));
}

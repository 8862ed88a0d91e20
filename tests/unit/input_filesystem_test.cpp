// make_input_filesystem: the CLI's input as an ext4 filesystem for the worker, made with the
// real tar, unshare and mke2fs (read back with debugfs), and nothing left behind.
#include "extract_helpers.hpp"
#include "manager-agent/input_filesystem.hpp"
#include "proc/process.hpp"
#include "temporary_directory.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <unistd.h>

using namespace contractor;
using namespace contractor::test;
using contractor::test::TemporaryDirectory;

namespace {

std::string debugfs(const fs::path& image, const std::string& request) {
    return proc::run_checked({"debugfs", "-R", request, image.string()});
}

// Folders of this process's making a filesystem in `parent`.
std::size_t staging_folders(const fs::path& parent) {
    std::size_t count = 0;
    const std::string prefix = "contractor-input-" + std::to_string(getpid()) + "-";
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(parent, error)) {
        count += entry.path().filename().string().rfind(prefix, 0) == 0 ? 1 : 0;
    }
    return count;
}

} // namespace

TEST_CASE("the input becomes a filesystem whose files are the worker user's", "[exchange]") {
    const TemporaryDirectory temporary;
    const std::string input = TarBuilder()
                                  .directory("src", 0555) // read-only: removed all the same
                                  .file("src/main.c", "int main() {}\n", 0640)
                                  .symlink("src/link", "main.c")
                                  .file("notes", std::string(70000, 'n'))
                                  .finish();
    const fs::path tar = temporary.write("input.tar", input);
    const fs::path image = temporary.write("exchange.img", std::string(1024, '\0'));
    const auto bytes = manager::make_input_filesystem(tar, temporary.path(), image, {1234, 4321});
    REQUIRE(bytes);
    CHECK(*bytes % (1024 * 1024) == 0);
    CHECK(fs::file_size(image) == *bytes);
    const std::string main = debugfs(image, "stat /src/main.c");
    CHECK_THAT(main, Catch::Contains("User:  1234   Group:  4321"));
    CHECK_THAT(main, Catch::Contains("Mode:  0640"));
    CHECK(debugfs(image, "cat /src/main.c").find("int main() {}") != std::string::npos);
    CHECK_THAT(debugfs(image, "stat /src"), Catch::Contains("Mode:  0555"));
    CHECK_THAT(debugfs(image, "stat /src/link"), Catch::Contains("Fast link dest: \"main.c\""));
    CHECK_THAT(debugfs(image, "stat /notes"), Catch::Contains("Size: 70000"));
    // The unpacked folder is gone, wherever it was made.
    CHECK(staging_folders("/dev/shm") == 0);
    CHECK(staging_folders(temporary.path()) == 0);
}

TEST_CASE("an input with its own lost+found goes in as a tar stream", "[exchange]") {
    const TemporaryDirectory temporary;
    const fs::path tar = temporary.write(
        "input.tar", TarBuilder().directory("lost+found").file("lost+found/x", "x").finish());
    const fs::path image = temporary.write("exchange.img", std::string(1024, '\0'));
    CHECK_FALSE(manager::make_input_filesystem(tar, temporary.path(), image, {1000, 1000}));
    CHECK(staging_folders("/dev/shm") == 0);
}

#include "manager-agent/exchange_disk.hpp"
#include "manager-agent/input_filesystem.hpp"

#include <catch2/catch.hpp>

using namespace contractor::manager;
using Catch::Matchers::Contains;

TEST_CASE("the worker's report of a packed stream is read strictly", "[exchange]") {
    const auto packed = parse_packed("314572800 0\n");
    REQUIRE(packed);
    CHECK(packed->bytes == 314572800);
    CHECK(packed->tar_status == 0);
    CHECK(parse_packed("10240 1")->tar_status == 1);
    // Anything else is no report: the caller then fails the export.
    for (const char* printed : {"", "\n", "10240", "x 0", "10240 x", "-1 0", "10240 0 extra",
                                "10240 256", "99999999999999999999999 0", " 10240 0"}) {
        INFO(printed);
        CHECK_FALSE(parse_packed(printed));
    }
}

TEST_CASE("the worker finds the exchange disk by serial and waits for its size", "[exchange]") {
    const std::string find = find_exchange_device(5 * 1024 * 1024);
    CHECK_THAT(find, Contains("= contractor-exchange ]"));
    CHECK_THAT(find, Contains("-lt 5242880 ]"));
    // Reading the device bypasses the guest's cache: it read the first sectors at boot.
    const std::string unpack = unpack_from_exchange(5 * 1024 * 1024, 4 * 1024 * 1024 + 1);
    CHECK_THAT(unpack, Contains("count=5 iflag=direct"));
    CHECK_THAT(unpack, Contains("tar -x -f - -C /workspace --no-same-owner"));
    CHECK_THAT(pack_workspace_command(1024 * 1024, 0, ExportShape::whole), Contains("conv=fsync"));
}

TEST_CASE("the worker's user is read strictly", "[exchange]") {
    const auto user = parse_worker_user("1000 1001\n");
    REQUIRE(user);
    CHECK(user->uid == 1000);
    CHECK(user->gid == 1001);
    for (const char* bad : {"", "1000", "1000 ", " 1000", "1000 x", "-1 0", "4294967296 0",
                            "1000  1000", "1000 1000 1000"}) {
        CHECK_FALSE(parse_worker_user(bad));
    }
}

TEST_CASE("the worker mounts the input's filesystem under an overlay, read-only below",
          "[exchange]") {
    const std::string mount = mount_input_command(64 * 1024 * 1024, {1000, 1000});
    CHECK_THAT(mount, Contains("-lt 67108864 ]"));
    CHECK_THAT(mount, Contains("mount -t ext4 -o ro,noload"));
    CHECK_THAT(mount, Contains("redirect_dir=off,metacopy=off,index=off,xino=off"));
    CHECK_THAT(mount, Contains("sh \"$d\" 1000:1000"));
}

TEST_CASE("copy-out packs after the input's filesystem, whole or as changes", "[exchange]") {
    const std::string whole =
        pack_workspace_command(96 * 1024 * 1024, 32 * 1024 * 1024, ExportShape::whole);
    CHECK_THAT(whole, Contains("sh \"$d\" 32 whole "));
    CHECK_THAT(whole, Contains("seek=\"$seek\""));
    const std::string changes =
        pack_workspace_command(96 * 1024 * 1024, 32 * 1024 * 1024, ExportShape::changes);
    CHECK_THAT(changes, Contains("sh \"$d\" 32 changes "));
    // The list of removed paths first, under the marker's name; names from a list never read
    // as options.
    CHECK_THAT(changes, Contains(".contractor-workspace/removed -C /workspace --null "
                                 "--verbatim-files-from"));
}

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

// Tests for core/util/install_layout.hpp: where an installed or a built contractor finds its
// agent and its image recipes.
#include "util/install_layout.hpp"

#include <catch2/catch.hpp>

using contractor::util::install_layout_for;

TEST_CASE("an installed contractor finds its parts under its prefix", "[install]") {
    const auto layout = install_layout_for("/opt/tools/bin/contractor");
    CHECK_FALSE(layout.build_tree);
    CHECK(layout.agent == "/opt/tools/libexec/contractor/contractor-manager");
    CHECK(layout.recipes == "/opt/tools/share/contractor/images");
    CHECK(install_layout_for("/usr/bin/contractor").recipes == "/usr/share/contractor/images");
}

TEST_CASE("a contractor run from its build tree uses the source tree", "[install]") {
    // unit_tests runs from the build's bin/ folder, as contractor does.
    const auto layout = install_layout_for(
        std::filesystem::read_symlink("/proc/self/exe").parent_path() / "contractor");
    CHECK(layout.build_tree);
    CHECK(layout.agent.filename() == "contractor-manager");
    CHECK(layout.agent.parent_path() ==
          std::filesystem::read_symlink("/proc/self/exe").parent_path());
    CHECK(layout.recipes == std::filesystem::path(CONTRACTOR_SOURCE_DIR) / "images");
}

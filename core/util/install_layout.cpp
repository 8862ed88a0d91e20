#include "util/install_layout.hpp"

#include <cstdlib>
#include <system_error>

// Set by core/CMakeLists.txt from GNUInstallDirs and the build's own folders.
#ifndef CONTRACTOR_BUILD_BIN_DIR
#define CONTRACTOR_BUILD_BIN_DIR ""
#endif
#ifndef CONTRACTOR_SOURCE_DIR
#define CONTRACTOR_SOURCE_DIR ""
#endif
#ifndef CONTRACTOR_BIN_TO_LIBEXEC
#define CONTRACTOR_BIN_TO_LIBEXEC "../libexec/contractor"
#endif
#ifndef CONTRACTOR_BIN_TO_DATA
#define CONTRACTOR_BIN_TO_DATA "../share/contractor"
#endif

namespace contractor::util {
namespace fs = std::filesystem;

namespace {

bool same_folder(const fs::path& a, const fs::path& b) {
    std::error_code error;
    return !b.empty() && fs::equivalent(a, b, error) && !error;
}

} // namespace

InstallLayout install_layout_for(const fs::path& program) {
    const fs::path folder = program.parent_path();
    if (same_folder(folder, CONTRACTOR_BUILD_BIN_DIR)) {
        return {folder / "contractor-manager", fs::path(CONTRACTOR_SOURCE_DIR) / "images", true};
    }
    return {(folder / CONTRACTOR_BIN_TO_LIBEXEC / "contractor-manager").lexically_normal(),
            (folder / CONTRACTOR_BIN_TO_DATA / "images").lexically_normal(), false};
}

InstallLayout install_layout() {
    std::error_code error;
    const fs::path self = fs::read_symlink("/proc/self/exe", error);
    InstallLayout layout = install_layout_for(error ? fs::path("/usr/bin/contractor") : self);
    if (const char* agent = std::getenv("CONTRACTOR_MANAGER"); agent && *agent) {
        layout.agent = agent;
    }
    if (const char* recipes = std::getenv("CONTRACTOR_IMAGES_DIR"); recipes && *recipes) {
        layout.recipes = recipes;
    }
    return layout;
}

} // namespace contractor::util

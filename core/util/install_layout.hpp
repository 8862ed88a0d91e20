#pragma once

#include <filesystem>

namespace contractor::util {

// Where contractor's parts are, found from where the running program is, so that an installed
// contractor works anywhere it was installed (`cmake --install --prefix P`, the .deb) and with
// the source tree gone:
//
//   installed                                     build tree (development)
//   P/bin/contractor                              build/bin/contractor
//   P/libexec/contractor/contractor-manager       build/bin/contractor-manager
//   P/share/contractor/images/...                 SOURCE/images/...
//   P/share/contractor/worker-agent/...           SOURCE/worker-agent/...
//
// A program is in the build tree when it runs from the build's bin/ folder, recorded at
// compile time; anywhere else the installed layout applies. Environment variables still
// override each part for development: CONTRACTOR_MANAGER (the agent) and
// CONTRACTOR_IMAGES_DIR (the recipes).
struct InstallLayout {
    std::filesystem::path agent;   // contractor-manager
    std::filesystem::path recipes; // the image recipes: images/NAME/recipe.yaml
    bool build_tree = false;
};

// The layout for a program whose binary is at `program` (absolute).
InstallLayout install_layout_for(const std::filesystem::path& program);

// The layout of the running program (/proc/self/exe), with the environment's overrides.
InstallLayout install_layout();

} // namespace contractor::util

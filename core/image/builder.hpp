#pragma once

#include "image/cache.hpp"
#include "image/recipe.hpp"

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace contractor::image {

// The cache key of a recipe: SHA-256 over the recipe file, its customize script, every file
// it names, and the extra packages, so that changing any input makes a new image.
std::string recipe_digest(const Recipe& recipe, const std::vector<std::string>& extra_packages);

struct BuildReport {
    CachedImage image;
    bool from_cache = false;
    std::chrono::duration<double> seconds{};
};

// Reports a step: called with seconds < 0 when it starts, and with how long it took when it
// ends.
using StepReporter = std::function<void(const std::string& step, double seconds)>;

// Returns the cached image for the recipe and packages, building it first when it is not
// there: mmdebstrap (rootless where the OS allows) into a staging folder, mkfs.ext4 -d (no
// loop mounts), qemu-img convert to qcow2, kernel and initrd copied beside it. The staging
// folder is removed on every failure.
BuildReport build_image(const Recipe& recipe, const std::vector<std::string>& extra_packages,
                        const ImageCache& cache, const StepReporter& report_step);

} // namespace contractor::image

#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace contractor::image {

// An image recipe (images/NAME/recipe.yaml): a Debian root filesystem made by mmdebstrap,
// shaped by a customize script, packed into an ext4 disk.
struct Recipe {
    std::filesystem::path file; // the recipe.yaml
    std::string name;
    std::string suite;           // Debian suite, e.g. bookworm
    std::string variant;         // mmdebstrap variant, e.g. minbase
    std::uint64_t disk_size = 0; // bytes
    std::vector<std::string> packages;
    std::filesystem::path customize; // absolute path of the customize script
    // Host files the customize script reads, as environment variables, absolute paths.
    std::vector<std::pair<std::string, std::filesystem::path>> files;
    std::string init; // what the initrd starts
    // Keep apt's package lists and caches in the image, so packages install without an
    // `apt-get update` first (the worker: provisioning is faster).
    bool keep_apt_lists = false;
};

// The folder with the image recipes: $CONTRACTOR_IMAGES_DIR, else share/contractor/images of the
// installation, or the source tree's images/ for a program run from its build tree.
std::filesystem::path recipes_directory();

// Reads images/NAME/recipe.yaml from `directory`. Throws UsageError for an unknown name and
// SourceError for a malformed recipe.
Recipe load_recipe(const std::filesystem::path& directory, const std::string& name);

} // namespace contractor::image

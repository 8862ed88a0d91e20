#pragma once

#include "connection/hop.hpp"
#include "image/cache.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>

// What the CLI copies into the manager VM before a nested build: the manager agent it was
// built with, and the worker image the spec names. Both by digest, so an unchanged file is
// never copied twice and a changed one always is, whatever its name or date.
namespace contractor::managervm {

// Called with the bytes sent so far and the total.
using Progress = std::function<void(std::uint64_t done, std::uint64_t total)>;

// Copies `local` to `remote` on the hop, under a temporary name renamed into place when
// complete, so an interrupted copy never leaves a file that looks whole.
void upload_file(connection::Hop& hop, const std::filesystem::path& local,
                 const std::string& remote, int mode, const Progress& progress);

// Installs `agent` (contractor-manager) on the hop as
// ~/.local/lib/contractor/contractor-manager-DIGEST unless it is there; returns the command
// that runs it (arguments appended): it checks the file's whole SHA-256 first and runs nothing
// (exit 86) when it changed. `memo_root` remembers the agent's digest between runs.
std::string install_agent(connection::Hop& hop, const std::filesystem::path& agent,
                          const std::filesystem::path& memo_root);

struct ImageCopy {
    std::string entry; // NAME-DIGEST in the manager's image cache
    bool copied = false;
    std::uint64_t bytes = 0;
    double seconds = 0;
};

// Makes sure the cache entry `image` (disk, kernel, initrd, image.json) is in the manager's
// image cache (~/.cache/contractor/images/NAME-DIGEST), copying it when it is not.
ImageCopy install_image(connection::Hop& hop, const image::CachedImage& image,
                        const Progress& progress);

} // namespace contractor::managervm

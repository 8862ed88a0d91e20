#pragma once

#include "image/builder.hpp"
#include "image/cache.hpp"
#include "image/recipe.hpp"

#include <filesystem>
#include <iostream>

namespace contractor::test {

// The cached worker image, built on first use (a minute or two) and reused afterwards.
inline std::filesystem::path worker_image() {
    const image::ImageCache cache(image::ImageCache::default_root());
    const auto recipe = image::load_recipe(image::recipes_directory(), "worker");
    return image::build_image(recipe, {}, cache,
                              [](const std::string& step, double seconds) {
                                  if (seconds >= 0) {
                                      std::cerr << "image: " << step << " (" << seconds << " s)\n";
                                  }
                              })
        .image.disk();
}

} // namespace contractor::test

#pragma once

#include "image/builder.hpp"
#include "image/cache.hpp"
#include "image/recipe.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"

#include <filesystem>
#include <iostream>
#include <memory>

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

// A worker booted from the cached worker image and ready for SSH, with the accelerator
// contractor would choose.
inline std::unique_ptr<vm::Machine> boot_ready_worker(virt::Connection& connection,
                                                      const image::ImageCache& cache) {
    vm::BootRequest request;
    request.image = worker_image();
    request.accel = virt::choose_accel(virt::AccelRequest::automatic).accel;
    request.runs_directory = cache.root().parent_path() / "runs";
    auto machine = vm::Machine::boot(connection, cache, request);
    machine->wait_until_ready(std::chrono::seconds(300));
    return machine;
}

} // namespace contractor::test

#pragma once

#include "virt/libvirt.hpp"

#include <filesystem>
#include <string>
#include <vector>

namespace contractor::vm {

// Whether the process that created VM `name` ("contractor-worker-PID-RANDOM") is still alive:
// its VM is in use and must be left alone.
bool owner_alive(const std::string& name);

// Destroys and undefines every contractor VM whose owner is gone (a killed run, a kept
// worker) and deletes its run folder under `runs_directory`. Returns what it removed, one
// line each.
std::vector<std::string> remove_leftovers(virt::Connection& connection,
                                          const std::filesystem::path& runs_directory);

} // namespace contractor::vm

#pragma once

#include "image/layer_store.hpp"
#include "protocol/job.hpp"
#include "vm/machine.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

// Ready workers: after a build, a fresh worker for the next build like it (same image, layer,
// vCPUs, memory, disk and accelerator) is booted and left idle, so that build starts without
// waiting for a boot. Each sits in its run folder under a "ready" lease held by its keeper, a
// detached `contractor-manager keep-ready` process that booted it and stops it when its idle
// time is up. A build claims one by renaming its record (rename is atomic: one build gets it,
// never two, and never after the keeper took it back); from then on it is that build's worker
// and goes with it. Nothing of any build has been in a ready worker: it booted from the image
// (or layer) after the last build ended.
namespace contractor::manager {

// The record a ready worker's run folder holds while it waits (vm::Machine::hand_over), and
// what a build that claims it renames it to: the rename is the claim.
inline constexpr const char* ready_record_file = "ready.json";
inline constexpr const char* claimed_record_file = "claimed.json";

// What a ready worker is booted for: a build takes it only when this is equal.
std::string ready_key(const vm::BootRequest& request, const image::Layer* layer);

// Claims an idle worker booted for `key` in `runs`, if one waits: its run folder, leased to
// this process from now on (the record is claimed_record_file); nullopt when none waits.
std::optional<std::filesystem::path> claim_ready_worker(const std::filesystem::path& runs,
                                                        const std::string& key);

// Starts the keeper of a ready worker for the next build like `job` (a detached process that
// outlives this one); returns at once. `idle`: how long the worker waits for a build.
void start_ready_worker(const protocol::Job& job, std::chrono::seconds idle);

// `contractor-manager keep-ready REQUEST-FILE`: boots the worker the request describes, leaves
// it idle under a ready lease and stops it when its idle time is up, unless a build claimed it
// first. Its exit status is only seen in tests.
int keep_ready_worker(const std::filesystem::path& request_file);

} // namespace contractor::manager

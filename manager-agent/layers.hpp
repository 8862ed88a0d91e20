#pragma once

#include "image/layer_store.hpp"
#include "manager-agent/phases.hpp"
#include "manager-agent/worker_session.hpp"
#include "protocol/job.hpp"

#include <optional>
#include <string>

// Provisioned layers on the agent's side: which layer a job may start from, and how the
// worker's disk becomes one after provisioning (freeze, move the writes, thaw, copy).
namespace contractor::manager {

// What shapes the layer of `job` on `image`; nullopt when the job gets none: nothing to
// provision, an image that is not one of contractor's (a foreign image's cloud-init state and
// firmware would travel with it), or `cache: {max-size: 0}`.
std::optional<image::LayerInputs> layer_inputs(const protocol::Job& job, const WorkerImage& image);

// Keeps the worker's disk as provisioning left it as the layer `key`, before anything of the
// build reaches the worker: its root filesystem is frozen, its writes moved to a new overlay
// (the worker keeps running), the filesystem thawed, and the old overlay copied into the
// store read-only. Returns nullopt, after a status line saying why, when the worker could not
// be frozen (the build goes on without a layer); limits and cancellation throw as anywhere.
std::optional<image::Layer> save_layer(JobContext& context, const image::LayerStore& store,
                                       const std::string& key, const image::LayerInputs& inputs);

} // namespace contractor::manager

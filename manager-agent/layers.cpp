#include "manager-agent/layers.hpp"

#include "connection/hop.hpp"
#include "proc/process.hpp"
#include "spec/units.hpp"
#include "util/error.hpp"

#include <chrono>

#ifndef CONTRACTOR_VERSION
#define CONTRACTOR_VERSION "unknown"
#endif

namespace contractor::manager {
namespace {

// How long the worker may take to flush and freeze its root filesystem. A worker that does
// not say "frozen" in time gets no layer (it is not an error of the build).
constexpr std::chrono::seconds freeze_timeout(300);

// What the freeze command may print before "frozen": anything longer is not our command.
constexpr std::size_t freeze_output_limit = 256;

// One channel: flush, freeze, say so, then wait for a line on stdin (sent once the writes
// have moved) and thaw. `fsfreeze -u` is read from the page cache of a frozen filesystem,
// which works; a worker whose channel breaks is destroyed with its frozen disk anyway.
constexpr const char* freeze_command =
    "sudo -n sh -c 'sync && fsfreeze -f / && echo frozen && read line; fsfreeze -u /'";

std::string elapsed_since(std::chrono::steady_clock::time_point start) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s",
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return text;
}

} // namespace

std::optional<image::LayerInputs> layer_inputs(const protocol::Job& job, const WorkerImage& image) {
    if (!job.provisions() || !image.entry || job.layers.max_bytes == 0) {
        return std::nullopt;
    }
    image::LayerInputs inputs;
    inputs.image = image.entry->name + "-" + image.entry->digest;
    inputs.image_sha256 = image.entry->disk_sha256;
    inputs.install = job.install;
    inputs.ansible = job.ansible;
    inputs.provision_policy = protocol::policy_to_json(job.network)["provision"];
    inputs.disk_bytes = job.limits.disk;
    inputs.contractor_version = CONTRACTOR_VERSION;
    return inputs;
}

std::optional<image::Layer> save_layer(JobContext& context, const image::LayerStore& store,
                                       const std::string& key, const image::LayerInputs& inputs) {
    const auto started = std::chrono::steady_clock::now();
    Outbox& outbox = context.outbox;
    std::string errors;
    auto freeze = context.worker.worker().start(context.worker.clock_reset() + freeze_command,
                                                connection::bounded_sink(errors, 4096));
    std::string said;
    const auto deadline = std::chrono::steady_clock::now() + freeze_timeout;
    while (said.find("frozen\n") == std::string::npos) {
        context.pump.check();
        char buffer[64];
        const auto got = freeze->read(buffer, sizeof buffer, limits::Pump::slice);
        if (got && *got == 0) {
            outbox.status("the provisioned layer was not saved: the worker could not freeze its "
                          "filesystem (" +
                          proc::tail_lines(said + errors, 2) + ")");
            return std::nullopt;
        }
        if (got) {
            said.append(buffer, *got);
        }
        if (said.size() > freeze_output_limit || std::chrono::steady_clock::now() > deadline) {
            freeze->terminate();
            outbox.status("the provisioned layer was not saved: the worker did not freeze its "
                          "filesystem");
            return std::nullopt;
        }
    }
    // The worker's disk is consistent now; from here on it writes to a new overlay, and the
    // old one is the layer.
    std::filesystem::path frozen;
    std::string split_error;
    try {
        frozen = context.worker.split_disk();
    } catch (const InfrastructureError& error) {
        split_error = error.what();
    }
    freeze->write("\n", 1);
    freeze->close_write();
    if (const int status = context.pump.finish(*freeze); status != 0) {
        throw InfrastructureError("the worker could not thaw its filesystem after its layer was "
                                  "taken (exit " +
                                  std::to_string(status) + ")");
    }
    if (!split_error.empty()) {
        outbox.status("the provisioned layer was not saved: " + split_error);
        return std::nullopt;
    }
    // A store that cannot take the layer (a full disk, a folder of the wrong owner) costs the
    // next build its head start, not this build its result; a limit still ends the build.
    std::optional<image::Layer> saved;
    try {
        saved =
            store.save(key, frozen, image::to_json(inputs), [&context] { context.pump.check(); });
    } catch (const InfrastructureError& error) {
        outbox.status(std::string("the provisioned layer was not saved: ") + error.what());
        return std::nullopt;
    } catch (const std::filesystem::filesystem_error& error) {
        outbox.status(std::string("the provisioned layer was not saved: ") + error.what());
        return std::nullopt;
    }
    const image::Layer& layer = *saved;
    outbox.status("saved the provisioned layer " + key.substr(0, 12) + " (" +
                  spec::format_size(layer.size) + ") in " + elapsed_since(started) +
                  ": the next build with the same image and provisioning skips it");
    return saved;
}

} // namespace contractor::manager

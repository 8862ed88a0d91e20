#include "manager-agent/job.hpp"

#include "gateway/gateway.hpp"
#include "limits/pump.hpp"
#include "manager-agent/layers.hpp"
#include "manager-agent/phases.hpp"
#include "manager-agent/worker_session.hpp"
#include "spec/units.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"

#include <chrono>
#include <cmath>
#include <memory>

namespace contractor::manager {
using nlohmann::ordered_json;

namespace {

// Times the phases and tells the CLI when one starts.
class PhaseClock {
public:
    explicit PhaseClock(Outbox& outbox) : outbox_(outbox) {}

    void begin(const std::string& name) {
        end();
        current_ = name;
        started_ = std::chrono::steady_clock::now();
        outbox_.phase(name);
    }
    void end() {
        if (!current_.empty()) {
            phases_.push_back({current_, std::chrono::duration<double>(
                                             std::chrono::steady_clock::now() - started_)
                                             .count()});
            current_.clear();
        }
    }
    std::vector<PhaseTime> finish() {
        end();
        return phases_;
    }

private:
    Outbox& outbox_;
    std::string current_;
    std::chrono::steady_clock::time_point started_;
    std::vector<PhaseTime> phases_;
};

ordered_json network_json(const gateway::GatewayUsage& usage, const gateway::NicUsage& card) {
    ordered_json attempts = ordered_json::array();
    for (const auto& tally : usage.attempts) {
        const auto& attempt = tally.attempt;
        attempts.push_back(
            {{"host", attempt.host},
             {"port", attempt.port},
             {"protocol", policy::to_string(attempt.protocol)},
             {"phase", attempt.phase},
             {"allowed", attempt.allowed},
             {"refusal", attempt.allowed ? ordered_json() : ordered_json(attempt.refusal)},
             {"count", tally.count},
             {"bytes_up", tally.bytes_up},
             {"bytes_down", tally.bytes_down}});
    }
    ordered_json names = ordered_json::array();
    for (const auto& list : {usage.names, card.names}) {
        for (const auto& name : list) {
            names.push_back({{"name", name.name},
                             {"phase", name.phase},
                             {"answered", name.answered},
                             {"count", name.count}});
        }
    }
    // What the worker's card sent past the gateway (none of it got out).
    ordered_json direct = ordered_json::array();
    for (const auto& tally : card.attempts) {
        const auto& attempt = tally.attempt;
        direct.push_back({{"address", attempt.address},
                          {"port", attempt.port},
                          {"transport", gateway::to_string(attempt.transport)},
                          {"phase", attempt.phase},
                          {"count", tally.count}});
    }
    return {{"bytes_up", usage.bytes_up},
            {"bytes_down", usage.bytes_down},
            {"allowed", usage.allowed},
            {"blocked", usage.blocked + card.blocked},
            {"attempts", attempts},
            {"attempts_not_listed", usage.attempts_not_listed},
            {"direct", direct},
            {"direct_not_listed", card.attempts_not_listed},
            {"names", names},
            {"names_not_listed", usage.names_not_listed + card.names_not_listed}};
}

// The report's "usage": the worker's own figures while it exists, what the budget saw when
// it never got that far.
ordered_json usage_json(const limits::Budget& budget, WorkerSession* worker) {
    const auto spent = budget.usage();
    double cpu = spent.cpu_seconds;
    if (worker) {
        cpu = worker->cpu_seconds().value_or(cpu);
    }
    return {{"cpu_seconds", std::round(cpu * 100) / 100},
            {"disk_bytes", worker ? worker->overlay_bytes() : 0},
            {"log_bytes", spent.log_bytes},
            {"export_bytes", spent.export_bytes},
            {"network", worker ? network_json(worker->gateway().usage(), worker->nic_usage())
                               : network_json({}, {})}};
}

ordered_json layer_json(const image::Layer& layer, bool reused, bool saved) {
    return {{"key", layer.key},
            {"reused", reused},
            {"saved", saved},
            {"bytes", layer.size},
            {"age_seconds", std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now() - layer.created)
                                .count()}};
}

} // namespace

std::string_view to_string(Outcome outcome) {
    switch (outcome) {
    case Outcome::success:
        return "success";
    case Outcome::build_failed:
    case Outcome::provision_failed:
        return "build-failed";
    case Outcome::network_violation:
        return "network-violation";
    case Outcome::limit_exceeded:
        return "limit-exceeded";
    }
    return "error";
}

ExitCode exit_code(Outcome outcome) {
    switch (outcome) {
    case Outcome::success:
        return ExitCode::success;
    case Outcome::build_failed:
    case Outcome::provision_failed:
        return ExitCode::build_failed;
    case Outcome::network_violation:
    case Outcome::limit_exceeded:
        return ExitCode::limit_exceeded;
    }
    return ExitCode::infrastructure;
}

limits::Allowance allowance_for(const protocol::Job& job) {
    limits::Allowance allowance;
    allowance.timeout = std::chrono::seconds(job.limits.timeout);
    allowance.cpu_seconds = static_cast<double>(job.limits.cpu_time);
    allowance.memory_bytes = job.limits.memory;
    allowance.disk_bytes = job.limits.disk;
    allowance.log_bytes = job.limits.log_size;
    allowance.export_bytes = job.limits.export_size;
    allowance.network_bytes = job.limits.network_transfer;
    return allowance;
}

ordered_json to_json(const JobResult& result) {
    ordered_json json = {{"type", "result"},
                         {"result", to_string(result.outcome)},
                         {"exit_code", to_int(exit_code(result.outcome))},
                         {"message", result.message}};
    if (result.limit) {
        const bool seconds = result.limit->limit == limits::Limit::timeout ||
                             result.limit->limit == limits::Limit::cpu_time;
        json["limit"] = to_string(result.limit->limit);
        json["limit_usage"] = {{"unit", seconds ? "seconds" : "bytes"},
                               {"allowed", result.limit->allowed},
                               {"used", std::round(result.limit->used * 100) / 100},
                               {"overshoot", std::round(result.limit->overshoot() * 100) / 100}};
    }
    json["build_exit_status"] = result.build_exit_status;
    json["workspace_exported"] = result.workspace_exported;
    ordered_json phases = ordered_json::array();
    for (const auto& phase : result.phases) {
        phases.push_back(
            {{"name", phase.name}, {"seconds", std::round(phase.seconds * 100) / 100}});
    }
    json["phases"] = phases;
    json["usage"] = result.usage;
    json["accel"] = result.accel;
    json["layer"] = result.layer;
    if (result.kept_worker) {
        json["worker"] = *result.kept_worker;
    }
    return json;
}

JobResult run_job(const protocol::Job& job, Inbox& inbox, Outbox& outbox) {
    // The timeout counts from here: the moment the worker is asked for.
    limits::Budget budget(allowance_for(job));
    limits::Pump pump(budget);
    PhaseClock clock(outbox);
    JobResult result;
    std::unique_ptr<WorkerSession> worker;
    std::optional<std::string> provision_failure;
    try {
        try {
            clock.begin("boot");
            const WorkerImage image = resolve_worker_image(job);
            const auto inputs = layer_inputs(job, image);
            const image::LayerStore layers(image::LayerStore::default_root());
            const std::string key = inputs ? image::layer_key(*inputs) : std::string();
            std::optional<image::Layer> layer;
            if (inputs && job.layers.reuse) {
                layer = layers.find(key, std::chrono::seconds(job.layers.max_age));
            }
            if (layer) {
                layers.touch(*layer);
                outbox.status("starting from the provisioned layer " + key.substr(0, 12) +
                              " (saved " + image::human_age(layer->created) +
                              " ago): provisioning is skipped");
            }
            worker = std::make_unique<WorkerSession>(job, budget, outbox, image,
                                                     layer ? &*layer : nullptr);
            JobContext context{job, *worker, pump, inbox, outbox};
            if (layer) {
                result.layer = layer_json(*layer, true, false);
            } else if (job.provisions()) {
                clock.begin("provision");
                provision_failure = provision(context);
                if (!provision_failure && inputs) {
                    // Before the build policy and the source: nothing of the build is in it.
                    if (auto saved = save_layer(context, layers, key, *inputs)) {
                        result.layer = layer_json(*saved, false, true);
                        layers.remove_older_than(std::chrono::seconds(job.layers.max_age));
                        for (const auto& evicted : layers.evict_to(job.layers.max_bytes, key)) {
                            outbox.status("removed the least recently used layer " +
                                          evicted.key.substr(0, 12) + " (" +
                                          spec::format_size(evicted.size) +
                                          "): the layers' size cap is " +
                                          spec::format_size(job.layers.max_bytes));
                        }
                    } else {
                        result.layer = {{"key", key}, {"reused", false}, {"saved", false}};
                    }
                }
            }
            if (!provision_failure) {
                // The provision policy ends here, before the source arrives: whatever a
                // provisioning task left running has no connection left to carry it out.
                worker->enter_phase(policy::Phase::build);
                clock.begin("copy-in");
                copy_in(context);
                clock.begin("build");
                result.build_exit_status = run_build(context);
                // A limit the watchdog has not looked at yet (an OOM kill, a full disk in the
                // build's last moments) is found before anything is exported.
                worker->look_now();
                clock.begin("copy-out");
                copy_out(context);
                result.workspace_exported = true;
            }
        } catch (const limits::LimitExceeded&) {
            throw;
        } catch (const limits::NetworkViolation&) {
            throw;
        } catch (const Interrupted&) {
            throw;
        } catch (const std::exception&) {
            // A wait broke because the watchdog stopped the worker (the connection went with
            // it): the limit is the reason, not the broken connection.
            if (auto hit = budget.hit()) {
                throw limits::LimitExceeded(std::move(*hit));
            }
            if (auto refused = budget.violation()) {
                throw limits::NetworkViolation(std::move(*refused));
            }
            if (util::cancel_requested()) {
                throw Interrupted(util::cancel_signal());
            }
            throw;
        }
    } catch (const limits::LimitExceeded& exceeded) {
        result.outcome = Outcome::limit_exceeded;
        result.limit = exceeded.hit();
        result.message = exceeded.what();
        result.workspace_exported = false;
    } catch (const limits::NetworkViolation& violation) {
        result.outcome = Outcome::network_violation;
        result.message = violation.what();
        result.workspace_exported = false;
    }
    result.phases = clock.finish();
    result.accel = worker ? worker->accel() : std::string();
    result.usage = usage_json(budget, worker.get());
    if (result.outcome != Outcome::limit_exceeded && result.outcome != Outcome::network_violation) {
        if (provision_failure) {
            const auto blocked = result.usage["network"]["blocked"].get<std::uint64_t>();
            result.outcome = blocked > 0 ? Outcome::network_violation : Outcome::provision_failed;
            result.message = *provision_failure +
                             (blocked > 0 ? " (the worker tried to reach a host the provision "
                                            "policy does not allow)"
                                          : "");
        } else if (result.build_exit_status != 0) {
            result.outcome = Outcome::build_failed;
            result.message =
                "the build script exited with " + std::to_string(result.build_exit_status);
        } else {
            result.outcome = Outcome::success;
            result.message = "the build succeeded";
        }
    }
    // A failed build's worker is kept when asked (a worker stopped for a limit is gone).
    if (result.outcome != Outcome::success && job.keep_worker && worker &&
        result.outcome != Outcome::limit_exceeded && result.outcome != Outcome::network_violation) {
        result.kept_worker = worker->keep_for_debugging();
    }
    return result;
}

} // namespace contractor::manager

#include "cli/build_report.hpp"

#include "image/layer_store.hpp"
#include "protocol/job.hpp"
#include "spec/units.hpp"
#include "util/escape.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace contractor::cli {
using nlohmann::ordered_json;

namespace {

std::string seconds_text(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", seconds);
    return text;
}

std::string bytes_text(std::uint64_t bytes) {
    char text[32];
    if (bytes >= (1ULL << 30)) {
        std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1 << 30));
    } else if (bytes >= (1ULL << 20)) {
        std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    } else if (bytes >= 1024) {
        std::snprintf(text, sizeof text, "%.1f KiB", static_cast<double>(bytes) / 1024);
    } else {
        std::snprintf(text, sizeof text, "%llu B", static_cast<unsigned long long>(bytes));
    }
    return text;
}

std::string rules_text(const std::vector<policy::EffectiveRule>& rules) {
    if (rules.empty()) {
        return "nothing";
    }
    std::string text;
    for (const auto& rule : rules) {
        text += (text.empty() ? "" : ", ") + std::string(policy::to_string(rule.rule.protocol)) +
                "://" + rule.rule.host + ":" + std::to_string(rule.rule.port) + " (" +
                std::string(policy::to_string(rule.origin)) + ")";
    }
    return text;
}

// The manager's messages are built from what the worker did (console lines, host names the
// build asked for): every string in them is escaped before it reaches the report. Deeper
// than max_depth (the manager's messages are a few levels deep) a value is left out, so that
// a hostile one cannot exhaust the stack.
nlohmann::json escaped_strings(const nlohmann::json& value, int depth = 0) {
    constexpr int max_depth = 32;
    if (depth > max_depth) {
        return nullptr;
    }
    if (value.is_string()) {
        return util::escape_message(value.get_ref<const std::string&>(), true);
    }
    if (value.is_array()) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& item : value) {
            out.push_back(escaped_strings(item, depth + 1));
        }
        return out;
    }
    if (value.is_object()) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [key, item] : value.items()) {
            out[util::escape_message(key)] = escaped_strings(item, depth + 1);
        }
        return out;
    }
    return value;
}

// A text field of the manager's result, escaped for one line of the summary.
std::string text(const nlohmann::json& object, const char* key) {
    return util::escape_message(object.value(key, ""));
}

// The refusal the gateway gives an attempt that a rule in the phase would have allowed.
bool refused_by_allowlist(const nlohmann::json& attempt) {
    return attempt.value("refusal", nlohmann::json()).is_string() &&
           attempt["refusal"].get<std::string>().starts_with("not in the ");
}

// The `network:` section that would allow the attempts of `network` (the manager's usage):
// those refused by the allowlist, and with `everything` the allowed ones too (an audit's
// whole picture). Attempts refused for their address are not in it: no spec rule can allow
// those. {"provision": [...], "build": [...]}, each rule {host, port, protocol}, in order.
ordered_json suggested_network(const nlohmann::json& network, bool everything) {
    ordered_json section = {{"provision", ordered_json::array()}, {"build", ordered_json::array()}};
    for (const auto& attempt : network.value("attempts", nlohmann::json::array())) {
        const bool wanted =
            attempt.value("allowed", false) ? everything : refused_by_allowlist(attempt);
        const std::string phase = attempt.value("phase", "");
        if (!wanted || !section.contains(phase)) {
            continue;
        }
        const ordered_json rule = {{"host", attempt.value("host", "")},
                                   {"port", attempt.value("port", 0)},
                                   {"protocol", attempt.value("protocol", "")}};
        auto& rules = section[phase];
        if (std::find(rules.begin(), rules.end(), rule) == rules.end()) {
            rules.push_back(rule);
        }
    }
    return section;
}

// The section as YAML to paste into a spec, each line prefixed for the summary.
std::string network_yaml(const ordered_json& section) {
    std::string text = "contractor:   network:\n";
    for (const char* phase : {"provision", "build"}) {
        if (section[phase].empty()) {
            continue;
        }
        text += std::string("contractor:     ") + phase + ":\n";
        for (const auto& rule : section[phase]) {
            text +=
                "contractor:       - {host: " + util::escape_name(rule["host"].get<std::string>()) +
                ", port: " + std::to_string(rule["port"].get<int>()) +
                ", protocol: " + rule["protocol"].get<std::string>() + "}\n";
        }
    }
    return text;
}

bool is_git_reason(const std::string& reason) {
    return reason == transfer::git_folder_reason || reason == transfer::git_link_reason ||
           reason == transfer::bare_repository_reason;
}

} // namespace

void print_plan(std::ostream& err, const spec::EffectiveSpec& effective) {
    // The paths the build will read and replace, and who named them (quoted: a spec's names
    // may carry control characters).
    const bool cached = effective.worker_image.kind == spec::ImageReference::Kind::cached;
    err << "contractor: paths: worker image " << (cached ? "cached " : "")
        << util::quoted(effective.worker_image.value) << " ("
        << spec::to_string(effective.path_origins.worker_image) << "), source "
        << util::quoted(effective.source.string()) << " ("
        << spec::to_string(effective.path_origins.source) << "), workspace "
        << util::quoted(effective.workspace.string()) << " ("
        << spec::to_string(effective.path_origins.workspace) << ")\n";
    err << "contractor: limits:";
    for (std::size_t i = 0; i < spec::limit_fields.size(); ++i) {
        const auto& field = spec::limit_fields[i];
        const std::uint64_t value = effective.limits[i].value;
        std::string shown;
        switch (field.kind) {
        case spec::LimitKind::count:
            shown = std::to_string(value);
            break;
        case spec::LimitKind::size:
            shown = bytes_text(value);
            break;
        case spec::LimitKind::duration:
            shown = std::to_string(value) + " s";
            break;
        case spec::LimitKind::rate:
            shown = bytes_text(value) + "/s";
            break;
        }
        err << (i == 0 ? " " : ", ") << field.key << " " << shown;
    }
    err << "\n"
        << "contractor: network while provisioning: " << rules_text(effective.network.provision)
        << "\n"
        << "contractor: network while building: " << rules_text(effective.network.build)
        << std::endl;
}

ordered_json build_report(const BuildRecord& record) {
    const auto& result = record.outcome.result;
    ordered_json report;
    report["result"] = util::escape_message(result.value("result", "error"));
    report["exit_code"] = result.value("exit_code", 4);
    report["limit"] =
        result.contains("limit") ? ordered_json(escaped_strings(result["limit"])) : ordered_json();
    report["limit_usage"] = result.contains("limit_usage")
                                ? ordered_json(escaped_strings(result["limit_usage"]))
                                : ordered_json();
    report["message"] = util::escape_message(result.value("message", ""), true);
    report["build_exit_status"] = result.value("build_exit_status", -1);
    report["phases"] = escaped_strings(result.value("phases", nlohmann::json::array()));
    report["seconds"] = record.total_seconds;
    report["usage"] = escaped_strings(result.value("usage", nlohmann::json::object()));
    report["policy"] = protocol::policy_to_json(record.effective.network);
    // What would allow what was refused (with --network-audit: everything the build tried).
    report["network_suggestion"] = escaped_strings(suggested_network(
        result.value("usage", nlohmann::json::object()).value("network", nlohmann::json::object()),
        record.network_audit));
    report["topology"] = record.topology;
    report["accel"] = record.accel;
    const auto& problem = record.outcome.workspace_problem;
    report["workspace"] = {
        {"path", util::escape_name(record.effective.workspace.string())},
        {"exported", record.outcome.workspace_committed},
        {"bytes", record.outcome.workspace_bytes},
        {"came_back", record.outcome.workspace_changes ? "changes" : "whole"},
        {"changed_entries", record.outcome.workspace_changed},
        {"removed_paths", record.outcome.workspace_removed},
        {"problem", problem ? ordered_json(util::escape_message(*problem)) : ordered_json()}};
    // Names escaped as in the summary: a name from the worker can hold any byte but '/' and NUL.
    ordered_json rejected = ordered_json::array();
    for (const auto& entry : record.outcome.rejected) {
        rejected.push_back({{"path", util::escape_name(entry.path)},
                            {"reason", util::escape_message(entry.reason)}});
    }
    report["workspace"]["rejected"] = rejected;
    report["workspace"]["rejected_total"] =
        std::max<std::uint64_t>(record.outcome.rejected_total, record.outcome.rejected.size());
    report["log"] = util::escape_name(record.log_file.string());
    report["worker"] = result.contains("worker") ? ordered_json(escaped_strings(result["worker"]))
                                                 : ordered_json();
    report["layer"] = result.contains("layer") && result["layer"].is_object()
                          ? ordered_json(escaped_strings(result["layer"]))
                          : ordered_json();
    return report;
}

std::string report_text(const nlohmann::ordered_json& report) {
    return report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
}

void print_summary(std::ostream& err, const BuildRecord& record) {
    const auto& result = record.outcome.result;
    err << "contractor: ---- summary\n";
    err << "contractor: result: " << text(result, "result") << " (exit "
        << result.value("exit_code", 4)
        << "): " << util::escape_message(result.value("message", ""), true) << "\n";
    std::string phases;
    for (const auto& phase : result.value("phases", nlohmann::json::array())) {
        phases += (phases.empty() ? "" : ", ") + text(phase, "name") + " " +
                  seconds_text(phase.value("seconds", 0.0));
    }
    err << "contractor: time: " << phases << " (total " << seconds_text(record.total_seconds)
        << ")\n";
    if (const auto layer = result.value("layer", nlohmann::json()); layer.is_object()) {
        const std::string key = text(layer, "key").substr(0, 12);
        if (layer.value("reused", false)) {
            const auto saved = std::chrono::system_clock::now() -
                               std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                   std::chrono::duration<double>(
                                       std::clamp(layer.value("age_seconds", 0.0), 0.0, 1e9)));
            err << "contractor: provisioned layer: started from " << key << " (saved "
                << image::human_age(saved) << " ago; --no-cache provisions afresh)\n";
        } else if (layer.value("saved", false)) {
            err << "contractor: provisioned layer: saved " << key << " ("
                << bytes_text(layer.value("bytes", 0ULL))
                << "): the next build with this image and provisioning starts from it\n";
        } else {
            err << "contractor: provisioned layer: not saved (the status line above says why; "
                   "the next build provisions again)\n";
        }
    }
    const auto usage = result.value("usage", nlohmann::json::object());
    const auto network = usage.value("network", nlohmann::json::object());
    err << "contractor: used: CPU " << seconds_text(usage.value("cpu_seconds", 0.0)) << " of "
        << record.effective.limit("cpu-time").value << " s, disk "
        << bytes_text(usage.value("disk_bytes", 0ULL)) << " of "
        << bytes_text(record.effective.limit("disk").value) << ", network "
        << bytes_text(network.value("bytes_down", 0ULL) + network.value("bytes_up", 0ULL)) << " ("
        << network.value("allowed", 0) << " connections allowed, " << network.value("blocked", 0)
        << " blocked)\n";
    for (const auto& attempt : network.value("attempts", nlohmann::json::array())) {
        if (!attempt.value("allowed", true)) {
            const auto count = attempt.value("count", 1ULL);
            err << "contractor: blocked: " << text(attempt, "protocol") << "://"
                << util::escape_name(attempt.value("host", "")) << ":" << attempt.value("port", 0)
                << " while " << (text(attempt, "phase") == "build" ? "building" : "provisioning")
                << ": " << text(attempt, "refusal")
                << (count > 1 ? " (" + std::to_string(count) + " times)" : std::string()) << "\n";
        }
    }
    for (const auto& attempt : network.value("direct", nlohmann::json::array())) {
        const auto count = attempt.value("count", 1ULL);
        const std::string transport = text(attempt, "transport");
        err << "contractor: blocked: " << transport << " to "
            << util::escape_name(attempt.value("address", ""))
            << (transport == "icmp" ? std::string()
                                    : ":" + std::to_string(attempt.value("port", 0)))
            << " while " << (text(attempt, "phase") == "build" ? "building" : "provisioning")
            << ": sent past the gateway (the worker's network card leads nowhere; use the proxy "
               "or a tcp rule's name)"
            << (count > 1 ? " (" + std::to_string(count) + " times)" : std::string()) << "\n";
    }
    if (const auto more = network.value("direct_not_listed", 0ULL); more > 0) {
        err << "contractor: blocked: " << more
            << " more attempts past the gateway to other destinations (not listed)\n";
    }
    if (const auto more = network.value("attempts_not_listed", 0ULL); more > 0) {
        err << "contractor: blocked or allowed: " << more
            << " more attempts to other destinations (not listed)\n";
    }
    std::string unanswered;
    for (const auto& name : network.value("names", nlohmann::json::array())) {
        if (!name.value("answered", true)) {
            unanswered += (unanswered.empty() ? "" : ", ") + text(name, "name");
        }
    }
    if (!unanswered.empty()) {
        err << "contractor: names looked up that do not exist for the worker: " << unanswered
            << "\n";
    }
    const ordered_json suggestion = suggested_network(network, record.network_audit);
    if (!suggestion["provision"].empty() || !suggestion["build"].empty()) {
        err << (record.network_audit
                    ? "contractor: network audit: the build reached or tried these; to allow "
                      "them, put this in the spec:\n"
                    : "contractor: to allow what was blocked, put this in the spec (or your "
                      "config):\n")
            << network_yaml(suggestion);
    }
    for (const auto& entry : record.outcome.rejected) {
        err << "contractor: refused from the workspace: " << util::escape_name(entry.path) << ": "
            << util::escape_message(entry.reason) << "\n";
    }
    const auto& rejected = record.outcome.rejected;
    if (record.outcome.rejected_total > rejected.size()) {
        err << "contractor: refused from the workspace: "
            << record.outcome.rejected_total - rejected.size() << " more entries (the first "
            << rejected.size() << " are listed)\n";
    }
    if (std::any_of(rejected.begin(), rejected.end(),
                    [](const transfer::Rejected& entry) { return is_git_reason(entry.reason); })) {
        err << "contractor: hint: git metadata from the worker is refused because git runs "
               "commands it configures; the config key 'export: {allow-git: true}' lets it "
               "through\n";
    }
    const std::string workspace = util::escape_name(record.effective.workspace.string());
    if (record.outcome.workspace_committed) {
        err << "contractor: workspace: " << workspace << " ("
            << bytes_text(record.outcome.workspace_bytes);
        if (record.outcome.workspace_changes) {
            err << "; only the build's changes came back: " << record.outcome.workspace_changed
                << " entries, " << record.outcome.workspace_removed << " removed";
        }
        err << ")\n";
    } else {
        const auto& problem = record.outcome.workspace_problem;
        err << "contractor: workspace: not exported"
            << (problem ? ": " + util::escape_message(*problem) : "") << "; " << workspace
            << " is unchanged\n";
    }
    err << "contractor: build log: " << util::escape_name(record.log_file.string()) << "\n";
    if (result.contains("worker")) {
        const std::string worker = util::escape_name(result.value("worker", ""));
        err << "contractor: the worker " << worker << " is still running: 'contractor shell "
            << worker << "' opens a shell in it, 'contractor gc' removes it\n";
    }
    err.flush();
}

} // namespace contractor::cli

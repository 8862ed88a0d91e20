#include "cli/build_report.hpp"

#include "protocol/job.hpp"
#include "spec/units.hpp"
#include "util/escape.hpp"
#include "util/text.hpp"

#include <algorithm>
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
        // Said on every plan until step 7's gateway meters the traffic.
        const bool enforced = field.key != "network-rate" && field.key != "network-transfer";
        err << (i == 0 ? " " : ", ") << field.key << " " << shown
            << (enforced ? "" : " (not enforced yet)");
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
    report["topology"] = record.topology;
    report["accel"] = record.accel;
    const auto& problem = record.outcome.workspace_problem;
    report["workspace"] = {
        {"path", util::escape_name(record.effective.workspace.string())},
        {"exported", record.outcome.workspace_committed},
        {"bytes", record.outcome.workspace_bytes},
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
            err << "contractor: blocked: " << text(attempt, "protocol") << "://"
                << util::escape_name(attempt.value("host", "")) << ":" << attempt.value("port", 0)
                << " during " << text(attempt, "phase") << "\n";
        }
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
            << bytes_text(record.outcome.workspace_bytes) << ")\n";
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

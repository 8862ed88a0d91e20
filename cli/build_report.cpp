#include "cli/build_report.hpp"

#include "protocol/job.hpp"
#include "spec/units.hpp"

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

} // namespace

void print_plan(std::ostream& err, const spec::EffectiveSpec& effective) {
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
    report["result"] = result.value("result", "error");
    report["exit_code"] = result.value("exit_code", 4);
    report["limit"] = result.contains("limit") ? ordered_json(result["limit"]) : ordered_json();
    report["message"] = result.value("message", "");
    report["build_exit_status"] = result.value("build_exit_status", -1);
    report["phases"] = result.value("phases", nlohmann::json::array());
    report["seconds"] = record.total_seconds;
    report["usage"] = result.value("usage", nlohmann::json::object());
    report["policy"] = protocol::policy_to_json(record.effective.network);
    report["topology"] = record.topology;
    report["accel"] = record.accel;
    report["workspace"] = {{"path", record.effective.workspace.string()},
                           {"exported", record.outcome.workspace_committed},
                           {"bytes", record.outcome.workspace_bytes},
                           {"problem", record.outcome.workspace_problem
                                           ? ordered_json(*record.outcome.workspace_problem)
                                           : ordered_json()}};
    ordered_json rejected = ordered_json::array();
    for (const auto& entry : record.outcome.rejected) {
        rejected.push_back({{"path", entry.path}, {"reason", entry.reason}});
    }
    report["workspace"]["rejected"] = rejected;
    report["log"] = record.log_file.string();
    report["worker"] = result.contains("worker") ? ordered_json(result["worker"]) : ordered_json();
    return report;
}

void print_summary(std::ostream& err, const BuildRecord& record) {
    const auto& result = record.outcome.result;
    err << "contractor: ---- summary\n";
    err << "contractor: result: " << result.value("result", "error") << " (exit "
        << result.value("exit_code", 4) << "): " << result.value("message", "") << "\n";
    std::string phases;
    for (const auto& phase : result.value("phases", nlohmann::json::array())) {
        phases += (phases.empty() ? "" : ", ") + phase.value("name", "") + " " +
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
            err << "contractor: blocked: " << attempt.value("protocol", "") << "://"
                << attempt.value("host", "") << ":" << attempt.value("port", 0) << " during "
                << attempt.value("phase", "") << "\n";
        }
    }
    for (const auto& entry : record.outcome.rejected) {
        err << "contractor: refused from the workspace: " << entry.path << ": " << entry.reason
            << "\n";
    }
    if (record.outcome.workspace_committed) {
        err << "contractor: workspace: " << record.effective.workspace.string() << " ("
            << bytes_text(record.outcome.workspace_bytes) << ")\n";
    } else {
        err << "contractor: workspace: not exported"
            << (record.outcome.workspace_problem ? ": " + *record.outcome.workspace_problem : "")
            << "; " << record.effective.workspace.string() << " is unchanged\n";
    }
    err << "contractor: build log: " << record.log_file.string() << "\n";
    if (result.contains("worker")) {
        err << "contractor: the worker " << result["worker"].get<std::string>()
            << " is still running: 'contractor shell " << result["worker"].get<std::string>()
            << "' opens a shell in it, 'contractor gc' removes it\n";
    }
    err.flush();
}

} // namespace contractor::cli

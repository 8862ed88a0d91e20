#include "cli/gitlab_job.hpp"

#include "connection/hop.hpp"
#include "transfer/handles.hpp"
#include "util/error.hpp"
#include "util/exit_code.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <fcntl.h>
#include <unistd.h>

namespace contractor::cli::gitlab {
namespace fs = std::filesystem;

namespace {

// Variables that are the job token or carry it (the repository URL has it as a password).
constexpr std::array<std::string_view, 8> secret_names = {
    "CI_JOB_TOKEN",      "CI_BUILD_TOKEN", "CI_REGISTRY_PASSWORD", "CI_DEPENDENCY_PROXY_PASSWORD",
    "CI_REPOSITORY_URL", "CI_JOB_JWT",     "CI_JOB_JWT_V1",        "CI_JOB_JWT_V2"};

// Paths in the worker (the spec's layout: the source at /workspace/src).
constexpr std::string_view worker_builds_dir = "/workspace";
constexpr std::string_view worker_project_dir = "/workspace/src";

bool valid_name(const std::string& name) {
    return !name.empty() && (std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
           });
}

} // namespace

JobSteps parse_job_response(std::string_view text) {
    const auto json = nlohmann::json::parse(text, nullptr, false);
    if (!json.is_object() || !json.contains("steps") || !json["steps"].is_array()) {
        throw InfrastructureError("the runner's job response (JOB_RESPONSE_FILE) has no steps",
                                  "use GitLab Runner 15 or later");
    }
    JobSteps job;
    for (const auto& step : json["steps"]) {
        if (!step.is_object() || !step.value("name", nlohmann::json()).is_string()) {
            continue;
        }
        std::vector<std::string> commands;
        for (const auto& command : step.value("script", nlohmann::json::array())) {
            if (command.is_string()) {
                commands.push_back(command.get<std::string>());
            }
        }
        job.steps.emplace_back(step["name"].get<std::string>(), std::move(commands));
    }
    for (const auto& variable : json.value("variables", nlohmann::json::array())) {
        if (!variable.is_object() || !variable.value("key", nlohmann::json()).is_string()) {
            continue;
        }
        const auto key = variable["key"].get<std::string>();
        if (variable.value("masked", false)) {
            job.masked.insert(key);
        }
        if (variable.value("file", false)) {
            job.file_variables.insert(key);
        }
    }
    return job;
}

std::optional<std::string> worker_step(std::string_view stage) {
    if (stage == "build_script" || stage == "step_script") {
        return "script";
    }
    if (stage == "after_script") {
        return "after_script";
    }
    if (stage.starts_with("step_") && stage.size() > 5) {
        return std::string(stage.substr(5));
    }
    return std::nullopt;
}

Variables worker_variables(const Variables& job_variables, const JobSteps& job,
                           std::string_view token) {
    Variables chosen;
    for (const auto& [name, value] : job_variables) {
        const bool secret =
            std::find(secret_names.begin(), secret_names.end(), name) != secret_names.end();
        if (secret || !valid_name(name) || job.masked.contains(name) ||
            job.file_variables.contains(name) ||
            (!token.empty() && value.find(token) != std::string::npos) ||
            name == "CI_PROJECT_DIR" || name == "CI_BUILDS_DIR") {
            continue;
        }
        chosen.emplace_back(name, value);
    }
    chosen.emplace_back("CI_PROJECT_DIR", worker_project_dir);
    chosen.emplace_back("CI_BUILDS_DIR", worker_builds_dir);
    std::sort(chosen.begin(), chosen.end());
    return chosen;
}

std::string worker_script(const std::vector<std::string>& commands, const Variables& variables) {
    std::string script;
    for (const auto& [name, value] : variables) {
        script += "export " + name + "=" + connection::shell_quote(value) + "\n";
    }
    script += "cd " + std::string(worker_project_dir) + "\n";
    for (const auto& command : commands) {
        script += "printf '$ %s\\n' " + connection::shell_quote(command) + "\n" + command + "\n";
    }
    return script;
}

std::string one_worker_script(const std::vector<std::string>& script,
                              const std::optional<std::vector<std::string>>& after_script,
                              const Variables& variables, const std::string& marker) {
    // Each step in a subshell with errexit of its own; the outer script goes on past a failure
    // to say how the step ended.
    std::string text = "set +o errexit\n(set -o errexit -o pipefail\n" +
                       worker_script(script, variables) +
                       ")\nstatus=$?\nprintf '\\n%s script %d\\n' " +
                       connection::shell_quote(marker) + " \"$status\"\n";
    if (after_script) {
        Variables after = variables;
        std::erase_if(after, [](const auto& entry) { return entry.first == "CI_JOB_STATUS"; });
        text += "if [ \"$status\" -eq 0 ]; then CI_JOB_STATUS=success; else CI_JOB_STATUS=failed; "
                "fi\nexport CI_JOB_STATUS\n(set -o errexit -o pipefail\n" +
                worker_script(*after_script, after) + ")\nprintf '\\n%s after_script %d\\n' " +
                connection::shell_quote(marker) + " \"$?\"\n";
    }
    return text + "exit \"$status\"\n";
}

std::optional<std::pair<std::string, int>> parse_marker(std::string_view line,
                                                        std::string_view marker) {
    if (!line.starts_with(marker) || line.size() <= marker.size() || line[marker.size()] != ' ') {
        return std::nullopt;
    }
    const std::string_view rest = line.substr(marker.size() + 1);
    const auto space = rest.find(' ');
    if (space == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string step(rest.substr(0, space));
    const std::string_view number = rest.substr(space + 1);
    if ((step != "script" && step != "after_script") || number.empty() || number.size() > 3 ||
        number.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    return std::make_pair(step, std::stoi(std::string(number)));
}

std::string bash_command(const std::string& script) {
    return "exec bash -o errexit -o pipefail -c " + connection::shell_quote(script) + "\n";
}

StageExit stage_exit_of_build(int contractor_exit, int build_exit_status) {
    switch (contractor_exit) {
    case to_int(ExitCode::success):
        return {StageExit::Kind::success, std::nullopt};
    case to_int(ExitCode::build_failed):
        return {StageExit::Kind::build_failure,
                build_exit_status > 0 ? build_exit_status : contractor_exit};
    case to_int(ExitCode::limit_exceeded):
        return {StageExit::Kind::build_failure, contractor_exit};
    default:
        return {StageExit::Kind::system_failure, std::nullopt};
    }
}

StageExit stage_exit_of_host_script(int status) {
    if (status == 0) {
        return {StageExit::Kind::success, std::nullopt};
    }
    if (status > 0) {
        return {StageExit::Kind::build_failure, status};
    }
    return {StageExit::Kind::system_failure, std::nullopt};
}

std::vector<fs::path> files_holding(const fs::path& root, std::string_view needle) {
    std::vector<fs::path> found;
    if (needle.empty()) {
        return found;
    }
    std::error_code error;
    fs::recursive_directory_iterator walk(root, fs::directory_options::none, error);
    for (; !error && walk != fs::recursive_directory_iterator(); walk.increment(error)) {
        if (!walk->is_regular_file(error) || walk->is_symlink(error)) {
            continue;
        }
        const transfer::Fd fd(::open(walk->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd) {
            // Unreadable here is unreadable for the copy into the worker too.
            continue;
        }
        // Read in blocks, keeping the last needle.size() - 1 bytes, so a needle across two
        // blocks is found.
        std::string window;
        std::array<char, 1 << 16> block{};
        bool holds = false;
        for (;;) {
            const ssize_t got = ::read(fd.get(), block.data(), block.size());
            if (got <= 0) {
                break;
            }
            window.append(block.data(), static_cast<std::size_t>(got));
            if (window.find(needle) != std::string::npos) {
                holds = true;
                break;
            }
            window.erase(0, window.size() - std::min(window.size(), needle.size() - 1));
        }
        if (holds) {
            found.push_back(walk->path());
        }
    }
    return found;
}

bool lies_below(const fs::path& path, const fs::path& folder) {
    const fs::path normal = path.lexically_normal();
    const fs::path relative = normal.lexically_relative(folder.lexically_normal());
    return path.is_absolute() && !relative.empty() && *relative.begin() != "..";
}

} // namespace contractor::cli::gitlab

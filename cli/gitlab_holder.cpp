#include "cli/gitlab_holder.hpp"

#include "cli/gitlab_job.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/exit_code.hpp"
#include "util/private_file.hpp"
#include "vm/lease.hpp"

#include <array>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iterator>
#include <spawn.h>
#include <thread>

extern char** environ;

namespace contractor::cli::gitlab {
namespace fs = std::filesystem;

HolderFiles holder_files(const fs::path& job) {
    return {job / "holder.out",      job / "holder.json",   job / "go",
            job / "relay.offset",    job / "worker-script", job / "marker",
            job / "has-after-script"};
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file);
    if (!in) {
        throw InfrastructureError("cannot read " + file.string());
    }
    return {std::istreambuf_iterator<char>(in), {}};
}

void start_holder(std::vector<std::string> words, const fs::path& log_file) {
    std::vector<char*> argv;
    for (auto& word : words) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attributes);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    const std::string log = log_file.string();
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID);
    pid_t pid = 0;
    const int failed = posix_spawn(&pid, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (failed != 0) {
        throw InfrastructureError("cannot start the job's holder: " +
                                  std::string(std::strerror(failed)));
    }
}

int hold(const fs::path& job, BuildOptions build, const std::string& token, Context& context) {
    const HolderFiles files = holder_files(job);
    vm::write_lease(job, vm::lease_for_this_process(vm::LeaseKind::build));
    std::ofstream output(files.output, std::ios::app);
    output << std::unitbuf;
    Context held{context.config_location, output, output};
    build.script = bash_command(read_text(files.script));
    build.input_ready = [&files, &output, &build, token](auto deadline) {
        // The sources are there when the job's script is about to run; the build's timeout
        // bounds the wait (the agent's watchdog counts it too).
        while (!fs::exists(files.go)) {
            if (util::cancel_requested()) {
                throw Interrupted(util::cancel_signal());
            }
            if (std::chrono::steady_clock::now() > deadline) {
                throw Error("limit exceeded: timeout: the job's sources did not arrive within "
                            "the build's timeout",
                            "the timeout counts from prepare: raise 'timeout' in the spec",
                            ExitCode::limit_exceeded);
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        const auto holding = files_holding(*build.source, token);
        for (const auto& file : holding) {
            output << "contractor: not sent into the worker (it holds the job token): "
                   << file.lexically_relative(*build.source).string() << std::endl;
        }
        return holding;
    };
    nlohmann::json result = {{"contractor_exit", to_int(ExitCode::infrastructure)}};
    try {
        result["contractor_exit"] = run_build(build, held);
    } catch (const Interrupted& interrupted) {
        output << "contractor: " << interrupted.what() << "; cleaned up" << std::endl;
        result["contractor_exit"] = 128 + interrupted.signal();
    } catch (const Error& error) {
        output << "contractor: error: " << error.what()
               << (error.hint().empty() ? "" : " (" + error.hint() + ")") << std::endl;
        result["contractor_exit"] = to_int(error.exit_code());
    } catch (const std::exception& error) {
        output << "contractor: error: " << error.what() << std::endl;
    }
    try {
        result["build_exit_status"] =
            nlohmann::json::parse(read_text(build.report)).value("build_exit_status", -1);
    } catch (const std::exception&) {
        result["build_exit_status"] = -1;
    }
    util::write_private_file(files.result, result.dump());
    return 0;
}

Relayed relay(const fs::path& job, const std::string& step, bool stop_at_step, Context& context) {
    const HolderFiles files = holder_files(job);
    const std::string marker = read_text(files.marker);
    std::uintmax_t offset = 0;
    if (fs::exists(files.offset)) {
        offset = std::stoull(read_text(files.offset));
    }
    std::ifstream in(files.output, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(offset));
    std::string pending;
    Relayed relayed;
    bool cancel_passed = false;
    bool held_empty = false;
    for (;;) {
        std::array<char, 65536> block{};
        in.read(block.data(), block.size());
        const auto got = in.gcount();
        in.clear();
        pending.append(block.data(), static_cast<std::size_t>(got));
        std::size_t end;
        while ((end = pending.find('\n')) != std::string::npos) {
            const std::string line = pending.substr(0, end);
            pending.erase(0, end + 1);
            offset += end + 1;
            // The empty line the marker's own newline makes goes with it.
            if (held_empty) {
                held_empty = false;
                if (!parse_marker(line, marker)) {
                    context.out << '\n';
                }
            }
            if (line.empty()) {
                held_empty = true;
                continue;
            }
            if (const auto ended = parse_marker(line, marker)) {
                if (ended->first == step) {
                    relayed.step_status = ended->second;
                    if (stop_at_step) {
                        util::write_private_file(files.offset, std::to_string(offset));
                        context.out << std::flush;
                        return relayed;
                    }
                }
                continue;
            }
            context.out << line << '\n';
        }
        // A line longer than any marker line is the build's own output: shown as it comes, so
        // that this buffer stays bounded whatever the build prints.
        if (pending.size() > block.size()) {
            if (held_empty) {
                context.out << '\n';
                held_empty = false;
            }
            context.out << pending;
            offset += pending.size();
            pending.clear();
        }
        context.out << std::flush;
        if (got > 0) {
            continue;
        }
        if (fs::exists(files.result)) {
            // Everything it wrote is in the file before the result is.
            in.read(block.data(), block.size());
            if (in.gcount() > 0) {
                pending.append(block.data(), static_cast<std::size_t>(in.gcount()));
                in.clear();
                continue;
            }
            context.out << pending << std::flush;
            relayed.holder_result = nlohmann::json::parse(read_text(files.result), nullptr, false);
            return relayed;
        }
        if (util::cancel_requested() && !cancel_passed) {
            if (const auto lease = vm::read_lease(job); lease && vm::holder_alive(*lease)) {
                ::kill(lease->owner, SIGTERM);
            }
            cancel_passed = true;
        }
        if (const auto lease = vm::read_lease(job); !lease || !vm::holder_alive(*lease)) {
            if (!fs::exists(files.result)) {
                throw InfrastructureError("the job's holder ended without saying how its build "
                                          "ended (see " +
                                          (job / "holder.err").string() + ")");
            }
            continue;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

} // namespace contractor::cli::gitlab

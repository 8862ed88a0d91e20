#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

// The one way this project runs another program. Boost.Process stays inside process.cpp.
namespace contractor::proc {

// How a child process ended; every state has a name so no caller confuses them.
struct ProcessResult {
    enum class State { exited, killed, timed_out, failed_to_start };
    State state = State::failed_to_start;
    int exit_code = -1;      // for exited
    int signal = 0;          // for killed
    std::string output;      // stdout and stderr, interleaved, when captured
    std::string start_error; // for failed_to_start

    bool succeeded() const { return state == State::exited && exit_code == 0; }
    // "exited with 1", "killed by signal 9", "timed out", "could not start: ..."
    std::string describe() const;
};

struct ProcessOptions {
    // Killed (SIGKILL, with its process group) when it runs longer.
    std::optional<std::chrono::milliseconds> timeout;
    // Added to (or replacing in) the inherited environment.
    std::vector<std::pair<std::string, std::string>> environment;
    // Capture stdout and stderr into ProcessResult::output; otherwise they are inherited.
    bool capture_output = true;
};

// Runs `argv` (argv[0] looked up in PATH) to completion. Never throws for the child's failure.
ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options = {});

// Runs `argv` and returns its output; throws InfrastructureError naming the command, how it
// ended and the last lines of its output when it does not succeed.
std::string run_checked(const std::vector<std::string>& argv, const ProcessOptions& options = {},
                        const std::string& hint = {});

// A program running in the background with its output going to a file; killed (with its
// process group) and reaped when this object goes away.
class BackgroundProcess {
public:
    BackgroundProcess(const std::vector<std::string>& argv, const std::filesystem::path& output);
    ~BackgroundProcess();
    BackgroundProcess(const BackgroundProcess&) = delete;
    BackgroundProcess& operator=(const BackgroundProcess&) = delete;

    bool running();
    int pid() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The last `lines` lines of `text`, for error messages.
std::string tail_lines(std::string_view text, std::size_t lines);

} // namespace contractor::proc

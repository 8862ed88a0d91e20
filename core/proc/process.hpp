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

// A program whose stdin, stdout and stderr are pipes this process holds, for streaming in both
// directions (the manager agent, a local hop's commands). Killed with its process group and
// reaped when this object goes away.
class PipedProcess {
public:
    // Starts `argv` (argv[0] looked up in PATH); throws InfrastructureError when it cannot.
    explicit PipedProcess(const std::vector<std::string>& argv,
                          const std::vector<std::pair<std::string, std::string>>& environment = {});
    ~PipedProcess();
    PipedProcess(const PipedProcess&) = delete;
    PipedProcess& operator=(const PipedProcess&) = delete;

    // Descriptors of our ends of the pipes; -1 once closed.
    int stdin_fd() const;
    int stdout_fd() const;
    int stderr_fd() const;
    void close_stdin();

    // The exit status once it ended within `timeout` (128+N when killed by signal N).
    std::optional<int> wait_for(std::chrono::milliseconds timeout);
    // SIGTERM to the process group, then SIGKILL after `grace`; reaps it.
    int terminate(std::chrono::milliseconds grace);
    int pid() const;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// The last `lines` lines of `text`, for error messages.
std::string tail_lines(std::string_view text, std::size_t lines);

} // namespace contractor::proc

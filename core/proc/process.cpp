#include "proc/process.hpp"

#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

#include <boost/process.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace contractor::proc {

namespace bp = boost::process;

std::string ProcessResult::describe() const {
    switch (state) {
    case State::exited:
        return "exited with " + std::to_string(exit_code);
    case State::killed:
        return "killed by signal " + std::to_string(signal);
    case State::timed_out:
        return "timed out";
    case State::failed_to_start:
        return "could not start: " + start_error;
    }
    return "ended";
}

std::string tail_lines(std::string_view text, std::size_t lines) {
    while (!text.empty() && text.back() == '\n') {
        text.remove_suffix(1);
    }
    std::size_t start = text.size();
    for (std::size_t count = 0; count < lines && start > 0; ++count) {
        start = text.rfind('\n', start - 1);
        if (start == std::string_view::npos) {
            start = 0;
            break;
        }
    }
    return std::string(text.substr(start == 0 ? 0 : start + 1));
}

namespace {

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

std::string joined(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& word : argv) {
        out += (out.empty() ? "" : " ") + word;
    }
    return out;
}

} // namespace

ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& options) {
    ProcessResult result;
    if (argv.empty()) {
        result.start_error = "empty command";
        return result;
    }
    util::debug("proc", "run: " + joined(argv));
    const auto program = argv[0].find('/') == std::string::npos ? bp::search_path(argv[0])
                                                                : boost::filesystem::path(argv[0]);
    if (program.empty()) {
        result.start_error = argv[0] + " not found in PATH";
        return result;
    }
    auto environment = boost::this_process::environment();
    bp::environment child_environment = environment;
    for (const auto& [name, value] : options.environment) {
        child_environment[name] = value;
    }
    const std::vector<std::string> arguments(argv.begin() + 1, argv.end());
    // Output goes to an unlinked temporary file rather than a pipe: no reader thread is needed
    // and a chatty child can never block on a full pipe.
    std::FILE* capture = options.capture_output ? std::tmpfile() : nullptr;
    // Close-on-exec on our own descriptors: the child gets them as 0, 1 and 2 (dup2 clears the
    // flag there), and keeps no second copy.
    const FilePtr null_input(std::fopen("/dev/null", "re"));
    if (capture != nullptr) {
        fcntl(fileno(capture), F_SETFD, FD_CLOEXEC);
    }
    try {
        bp::group group;
        bp::child child;
        // Every child gets a process group of its own: a timeout kills the group whole, and
        // a child that signals its own group (mmdebstrap sends SIGHUP to its group when it
        // fails) cannot hit contractor. limit_handles closes every inherited descriptor but
        // stdin, stdout and stderr: children must not hold contractor's (or its parent's)
        // files, and mmdebstrap breaks when its pipes land on descriptors above 9 (dash
        // cannot redirect to them), which a parent like ctest with many open files causes.
        if (capture != nullptr) {
            child = bp::child(program, bp::args(arguments), bp::env(child_environment),
                              (bp::std_out & bp::std_err) > capture, bp::std_in < null_input.get(),
                              group, bp::limit_handles);
        } else {
            child = bp::child(program, bp::args(arguments), bp::env(child_environment),
                              bp::std_in < null_input.get(), group, bp::limit_handles);
        }
        // Waits in short slices so that Ctrl-C (util::cancel_requested) stops the child's
        // whole process group promptly instead of waiting for it to finish.
        bool finished = false;
        const auto deadline = options.timeout ? std::chrono::steady_clock::now() + *options.timeout
                                              : std::chrono::steady_clock::time_point::max();
        while (!finished && !util::cancel_requested() &&
               std::chrono::steady_clock::now() < deadline) {
            finished = child.wait_for(std::chrono::milliseconds(100));
        }
        if (!finished && util::cancel_requested()) {
            std::error_code ignored;
            group.terminate(ignored);
            child.wait(ignored);
            if (capture != nullptr) {
                std::fclose(capture);
            }
            throw Interrupted(util::cancel_signal());
        }
        if (!finished) {
            std::error_code ignored;
            group.terminate(ignored);
            child.terminate(ignored);
            child.wait();
            result.state = ProcessResult::State::timed_out;
        } else {
            const int native = child.native_exit_code();
            if (WIFSIGNALED(native)) {
                result.state = ProcessResult::State::killed;
                result.signal = WTERMSIG(native);
            } else {
                result.state = ProcessResult::State::exited;
                result.exit_code = WEXITSTATUS(native);
            }
        }
    } catch (const bp::process_error& error) {
        result.state = ProcessResult::State::failed_to_start;
        result.start_error = error.what();
    }
    if (capture != nullptr) {
        std::rewind(capture);
        char buffer[8192];
        std::size_t count = 0;
        while ((count = std::fread(buffer, 1, sizeof buffer, capture)) > 0) {
            result.output.append(buffer, count);
        }
        std::fclose(capture);
    }
    util::debug("proc", argv[0] + ": " + result.describe());
    return result;
}

struct BackgroundProcess::State {
    bp::group group;
    bp::child child;
};

BackgroundProcess::BackgroundProcess(const std::vector<std::string>& argv,
                                     const std::filesystem::path& output)
    : state_(std::make_unique<State>()) {
    util::debug("proc", "start: " + joined(argv));
    const auto program = bp::search_path(argv.at(0));
    if (program.empty()) {
        throw InfrastructureError(argv[0] + " not found in PATH");
    }
    const std::vector<std::string> arguments(argv.begin() + 1, argv.end());
    try {
        state_->child =
            bp::child(program, bp::args(arguments), (bp::std_out & bp::std_err) > output.string(),
                      bp::std_in < bp::close, state_->group, bp::limit_handles);
    } catch (const bp::process_error& error) {
        throw InfrastructureError(argv[0] + " could not start: " + error.what());
    }
}

BackgroundProcess::~BackgroundProcess() {
    std::error_code error;
    if (state_->child.running(error)) {
        state_->group.terminate(error);
    }
    state_->child.wait(error);
}

bool BackgroundProcess::running() {
    std::error_code error;
    return state_->child.running(error);
}

int BackgroundProcess::pid() const {
    return state_->child.id();
}

std::string run_checked(const std::vector<std::string>& argv, const ProcessOptions& options,
                        const std::string& hint) {
    ProcessResult result = run_process(argv, options);
    if (!result.succeeded()) {
        std::string message = argv[0] + " " + result.describe();
        const std::string tail = tail_lines(result.output, 12);
        if (!tail.empty()) {
            message += ": " + tail;
        }
        throw InfrastructureError(message, hint);
    }
    return std::move(result.output);
}

} // namespace contractor::proc

namespace contractor::proc {

struct PipedProcess::State {
    pid_t pid = -1;
    int input = -1;  // our end of the child's stdin
    int output = -1; // our end of its stdout
    int errors = -1; // our end of its stderr
    std::optional<int> status;
};

namespace {

int status_of(int native) {
    return WIFSIGNALED(native) ? 128 + WTERMSIG(native) : WEXITSTATUS(native);
}

void close_fd(int& fd) {
    if (fd >= 0) {
        ::close(fd);
        fd = -1;
    }
}

} // namespace

PipedProcess::PipedProcess(const std::vector<std::string>& argv,
                           const std::vector<std::pair<std::string, std::string>>& environment)
    : state_(std::make_unique<State>()) {
    util::debug("proc", "start piped: " + joined(argv));
    // posix_spawn rather than Boost.Process here: Boost 1.74's limit_handles closes the pipes
    // it was given. The child gets the three pipes as 0, 1 and 2 and nothing else (closefrom),
    // and a process group of its own, like every child.
    int in[2];
    int out[2];
    int err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 ||
        ::pipe2(err, O_CLOEXEC) != 0) {
        throw InfrastructureError("cannot create pipes for " + argv.at(0));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                              POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t signals;
    sigemptyset(&signals);
    posix_spawnattr_setsigmask(&attributes, &signals);
    sigaddset(&signals, SIGPIPE);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    posix_spawnattr_setsigdefault(&attributes, &signals);

    std::vector<std::string> variables;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        const std::string variable = *entry;
        const std::string name = variable.substr(0, variable.find('='));
        bool replaced = false;
        for (const auto& [override_name, value] : environment) {
            replaced = replaced || override_name == name;
        }
        if (!replaced) {
            variables.push_back(variable);
        }
    }
    for (const auto& [name, value] : environment) {
        variables.push_back(name + "=" + value);
    }
    std::vector<char*> env_pointers;
    for (auto& variable : variables) {
        env_pointers.push_back(variable.data());
    }
    env_pointers.push_back(nullptr);
    std::vector<std::string> words = argv;
    std::vector<char*> arg_pointers;
    for (auto& word : words) {
        arg_pointers.push_back(word.data());
    }
    arg_pointers.push_back(nullptr);

    const int error = posix_spawnp(&state_->pid, arg_pointers[0], &actions, &attributes,
                                   arg_pointers.data(), env_pointers.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    state_->input = in[1];
    state_->output = out[0];
    state_->errors = err[0];
    if (error != 0) {
        close_fd(state_->input);
        close_fd(state_->output);
        close_fd(state_->errors);
        throw InfrastructureError(argv[0] + " could not start: " + std::strerror(error));
    }
}

PipedProcess::~PipedProcess() {
    if (!state_->status) {
        // Long enough for a manager agent to tear its worker down after SIGTERM (its waits
        // check for cancellation at least every few seconds).
        terminate(std::chrono::seconds(15));
    }
    close_fd(state_->input);
    close_fd(state_->output);
    close_fd(state_->errors);
}

int PipedProcess::stdin_fd() const {
    return state_->input;
}
int PipedProcess::stdout_fd() const {
    return state_->output;
}
int PipedProcess::stderr_fd() const {
    return state_->errors;
}
void PipedProcess::close_stdin() {
    close_fd(state_->input);
}
int PipedProcess::pid() const {
    return state_->pid;
}

std::optional<int> PipedProcess::wait_for(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!state_->status) {
        int native = 0;
        const pid_t done = ::waitpid(state_->pid, &native, WNOHANG);
        if (done == state_->pid) {
            state_->status = status_of(native);
        } else if (done < 0 && errno != EINTR) {
            state_->status = 128 + SIGKILL; // not ours to wait for any more
        } else if (std::chrono::steady_clock::now() >= deadline) {
            break;
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    return state_->status;
}

int PipedProcess::terminate(std::chrono::milliseconds grace) {
    if (state_->status) {
        return *state_->status;
    }
    // SIGTERM first so the child can tear down what it started (a worker VM); SIGKILL for the
    // group when it does not finish within `grace`.
    ::kill(-state_->pid, SIGTERM);
    if (auto status = wait_for(grace)) {
        return *status;
    }
    ::kill(-state_->pid, SIGKILL);
    return wait_for(std::chrono::seconds(10)).value_or(128 + SIGKILL);
}

} // namespace contractor::proc

#pragma once

#include "connection/chain.hpp"
#include "manager-agent/inbox.hpp"
#include "manager-agent/outbox.hpp"
#include "protocol/job.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace contractor::gateway {
class Gateway;
}
namespace contractor::vm {
class Machine;
}
namespace contractor::virt {
class Connection;
}
namespace contractor::proc {
class BackgroundProcess;
}

namespace contractor::manager {

// Where the worker reaches its gateway (the manager's HTTP proxy): a port on the worker's own
// loopback that sshd forwards, over the manager's SSH connection, to the gateway on the
// manager's loopback (ssh -R). The worker's NIC stays restrict=on: it can open no connection
// to anything, and everything it reaches goes through the gateway's allowlist. (QEMU's
// guestfwd=...-cmd: would need QEMU to spawn processes, which libvirt's seccomp sandbox
// forbids: QEMU dies on the first connection.)
inline constexpr int worker_gateway_port = 3128;

// A hard limit crossed while the build ran: the worker is stopped at once.
struct LimitHit {
    std::string limit;   // the key in limit_fields: "timeout", "cpu-time", "log-size", ...
    std::string message; // "the build used 61 s of CPU time, over its limit of 60 s"
};

// One build from boot to teardown: boots the worker, provisions it, takes the input tar
// stream from the CLI, runs the build streaming its output, sends the workspace back, and
// answers with the result message. The worker is destroyed when this object goes away,
// whatever happened (unless the job asked to keep a failed worker).
class JobRunner {
public:
    JobRunner(protocol::Job job, Inbox& inbox, Outbox& outbox);
    ~JobRunner();
    JobRunner(const JobRunner&) = delete;
    JobRunner& operator=(const JobRunner&) = delete;

    // Runs every phase; returns the "result" message. Throws Error for failures that are not
    // the build's (exit code 4), Interrupted when the CLI cancelled or went away.
    nlohmann::ordered_json run();

private:
    void boot();
    // Opens the worker's only way out, once, when a phase may use the network: a port on the
    // worker's loopback, forwarded over SSH to the gateway here, and apt told to use it.
    void open_gateway_tunnel();
    // False when provisioning failed (the message is in provision_failure_).
    bool provision();
    void copy_in();
    int run_build();
    void copy_out();
    // Throws LimitHit when the time, CPU time or log budget is spent.
    void check_limits();
    void begin_phase(const std::string& name);
    void end_phase();
    nlohmann::ordered_json usage() const;
    // Writes the worker's client key and a known_hosts file holding only its pinned host key
    // into `folder` (0600), for OpenSSH-based tools (the gateway tunnel).
    void write_ssh_credentials(const std::filesystem::path& folder) const;
    void keep_worker_for_debugging(nlohmann::ordered_json& result);
    // A shell prefix that sets the worker's clock to this side's, for a worker whose clock
    // counts instructions (it falls behind while the guest is busy); empty otherwise.
    std::string clock_reset() const;

    protocol::Job job_;
    Inbox& inbox_;
    Outbox& outbox_;
    std::chrono::steady_clock::time_point started_;
    std::vector<std::pair<std::string, double>> phases_;
    std::optional<std::pair<std::string, std::chrono::steady_clock::time_point>> current_phase_;
    std::uint64_t log_bytes_ = 0;
    std::optional<double> last_cpu_seconds_;
    std::chrono::steady_clock::time_point last_cpu_check_;
    std::string provision_failure_;
    std::string accel_ = "tcg"; // what the worker runs with
    bool workspace_sent_ = false;
    bool instruction_clock_ = false; // the worker's clock counts instructions (nested TCG)

    std::unique_ptr<virt::Connection> libvirt_;
    std::unique_ptr<gateway::Gateway> gateway_;
    std::unique_ptr<vm::Machine> machine_;
    std::unique_ptr<proc::BackgroundProcess> gateway_tunnel_;
    std::unique_ptr<connection::Chain> chain_;
};

} // namespace contractor::manager

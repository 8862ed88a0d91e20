#include "manager-agent/job_runner.hpp"

#include "gateway/gateway.hpp"
#include "image/cache.hpp"
#include "proc/process.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/private_file.hpp"
#include "virt/accel.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <thread>
#include <unistd.h>

namespace contractor::manager {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// How long a worker may take to boot before the build is called an infrastructure failure.
// Under TCG the worker needs about 8 s; inside the manager VM under TCG about 390 s, and more
// with two booting side by side. A kernel panic stops the domain at once (panic=-1), so this
// bound only matters for a worker that hangs.
constexpr std::chrono::seconds boot_timeout(1500);

// How long the worker's sshd may take to open the way to the gateway (a new SSH connection:
// most of a minute inside the manager VM under TCG). Once open, the tunnel gives up only after
// 5 minutes without an answer: a worker busy compiling on its one vCPU answers late.
constexpr std::chrono::seconds tunnel_timeout(600);

// How long the worker's sshd may take to open a channel (a command, a tar stream): minutes
// inside the manager VM under TCG while another connection's key exchange holds its one vCPU.
constexpr std::chrono::seconds channel_patience(300);

// A worker emulated inside the emulated manager runs a few million instructions a second. On
// the host's clock its kernel then spends most of its time in timer interrupts (each LAPIC
// write is an emulated MMIO exit inside an emulated QEMU) and sshd's login grace runs out
// mid-handshake. Its clock counts instructions instead: 2^4 ns each, a 62.5 MHz guest whose
// ticks come per instruction, not per second (measured in README "Nested builds under TCG").
// Only for TCG: with KVM the guest runs at its own speed.
constexpr unsigned nested_instruction_clock_shift = 4;

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string format_seconds(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", seconds);
    return text;
}

} // namespace

JobRunner::JobRunner(protocol::Job job, Inbox& inbox, Outbox& outbox)
    : job_(std::move(job)), inbox_(inbox), outbox_(outbox),
      started_(std::chrono::steady_clock::now()) {}

JobRunner::~JobRunner() = default;

void JobRunner::begin_phase(const std::string& name) {
    end_phase();
    current_phase_.emplace(name, std::chrono::steady_clock::now());
    outbox_.phase(name);
}

void JobRunner::end_phase() {
    if (current_phase_) {
        phases_.emplace_back(current_phase_->first, seconds_since(current_phase_->second));
        current_phase_.reset();
    }
}

void JobRunner::check_limits() {
    if (util::cancel_requested()) {
        throw Interrupted(util::cancel_signal());
    }
    const double elapsed = seconds_since(started_);
    if (elapsed > static_cast<double>(job_.limit("timeout"))) {
        throw LimitHit{"timeout", "the build ran for " + format_seconds(elapsed) +
                                      ", over its limit of " +
                                      std::to_string(job_.limit("timeout")) + " s"};
    }
    if (log_bytes_ > job_.limit("log-size")) {
        throw LimitHit{"log-size", "the build printed more than " +
                                       std::to_string(job_.limit("log-size")) + " bytes"};
    }
    // libvirt's CPU time is cheap to read, but not free: once a second is enough to stop a
    // runaway build within a second of its budget.
    const auto now = std::chrono::steady_clock::now();
    if (machine_ && now - last_cpu_check_ >= std::chrono::seconds(1)) {
        last_cpu_check_ = now;
        if (const auto cpu = machine_->domain().cpu_seconds()) {
            last_cpu_seconds_ = cpu;
            if (*cpu > static_cast<double>(job_.limit("cpu-time"))) {
                throw LimitHit{"cpu-time", "the worker used " + format_seconds(*cpu) +
                                               " of CPU time, over its limit of " +
                                               std::to_string(job_.limit("cpu-time")) + " s"};
            }
        }
    }
}

void JobRunner::boot() {
    begin_phase("boot");
    const image::ImageCache cache(image::ImageCache::default_root());
    fs::path image;
    std::optional<image::CachedImage> entry_to_boot;
    if (job_.image_kind == "entry") {
        // NAME-DIGEST, copied into this cache by the CLI (nested topology).
        const auto dash = job_.image.rfind('-');
        entry_to_boot = dash == std::string::npos
                            ? std::nullopt
                            : cache.find(job_.image.substr(0, dash), job_.image.substr(dash + 1));
        if (!entry_to_boot) {
            throw InfrastructureError("the image " + job_.image + " is not in the manager's cache",
                                      "run the build again: the CLI copies it in");
        }
        image = entry_to_boot->disk();
    } else if (job_.image_kind == "cached") {
        entry_to_boot = cache.newest(job_.image);
        if (!entry_to_boot) {
            throw UsageError("there is no cached image called '" + job_.image + "'",
                             "build it with 'contractor image build " + job_.image + "'");
        }
        image = entry_to_boot->disk();
    } else {
        image = job_.image;
    }
    libvirt_ = std::make_unique<virt::Connection>(virt::default_uri());

    gateway::GatewayOptions options;
    options.upstream_proxy = job_.upstream_proxy;
    gateway_ = std::make_unique<gateway::Gateway>(job_.network.provision, "provision", options);

    vm::BootRequest request;
    request.image = image;
    request.cached_image = entry_to_boot;
    // "auto" (nested): this side decides, a VM level below the CLI.
    request.accel = job_.accel == "auto"  ? virt::choose_accel(virt::AccelRequest::automatic).accel
                    : job_.accel == "kvm" ? virt::Accel::kvm
                                          : virt::Accel::tcg;
    accel_ = std::string(virt::to_string(request.accel));
    // Only a worker inside the manager ("auto": the CLI left the choice to this side) is that
    // slow; a worker on the host keeps the host's clock.
    instruction_clock_ = job_.accel == "auto" && request.accel == virt::Accel::tcg;
    if (instruction_clock_) {
        request.instruction_clock_shift = nested_instruction_clock_shift;
    }
    request.memory_bytes = job_.limit("memory");
    request.vcpus = static_cast<unsigned>(job_.limit("cpus"));
    request.disk_bytes = job_.limit("disk");
    request.runs_directory = cache.root().parent_path() / "runs";
    machine_ = vm::Machine::boot(*libvirt_, cache, request);
    outbox_.status("worker " + machine_->name() + " is booting (" +
                   std::string(virt::to_string(request.accel)) + ")");
    machine_->wait_until_ready(boot_timeout);
    chain_ = std::make_unique<connection::Chain>();
    // The session that proved the worker ready: a new one would cost the worker's sshd most
    // of a minute inside the manager VM under TCG.
    auto session = machine_->take_ready_session();
    session->set_channel_patience(channel_patience);
    chain_->add_ssh(machine_->endpoint(), std::move(session));
    outbox_.status("worker ready after " + format_seconds(seconds_since(current_phase_->second)));
}

void JobRunner::write_ssh_credentials(const fs::path& folder) const {
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms::owner_all);
    const auto& endpoint = machine_->endpoint();
    util::write_private_file(folder / "client_key", endpoint.private_key);
    util::write_private_file(folder / "known_hosts", "[" + endpoint.host +
                                                         "]:" + std::to_string(endpoint.port) +
                                                         " " + endpoint.pinned_host_key + "\n");
}

void JobRunner::open_gateway_tunnel() {
    if (gateway_tunnel_) {
        return;
    }
    const fs::path folder = machine_->run_directory() / "gateway-tunnel";
    write_ssh_credentials(folder);
    const auto& endpoint = machine_->endpoint();
    gateway_tunnel_ = std::make_unique<proc::BackgroundProcess>(
        std::vector<std::string>{"ssh",
                                 "-N",
                                 "-T",
                                 "-F",
                                 "/dev/null",
                                 "-i",
                                 (folder / "client_key").string(),
                                 "-o",
                                 "IdentitiesOnly=yes",
                                 "-o",
                                 "UserKnownHostsFile=" + (folder / "known_hosts").string(),
                                 "-o",
                                 "GlobalKnownHostsFile=/dev/null",
                                 "-o",
                                 "StrictHostKeyChecking=yes",
                                 "-o",
                                 "ExitOnForwardFailure=yes",
                                 "-o",
                                 "ServerAliveInterval=30",
                                 "-o",
                                 "ServerAliveCountMax=10",
                                 "-v",
                                 "-p",
                                 std::to_string(endpoint.port),
                                 "-R",
                                 "127.0.0.1:" + std::to_string(worker_gateway_port) +
                                     ":127.0.0.1:" + std::to_string(gateway_->port()),
                                 endpoint.user + "@" + endpoint.host},
        folder / "ssh.log");
    // ssh says "remote forward success" (at -v) once the worker's sshd listens on the port.
    // Its log is read here, in the manager: asking the worker instead (ss in a loop) cost
    // seconds of its only vCPU per try inside the manager VM under TCG.
    const fs::path log = folder / "ssh.log";
    const auto deadline = std::chrono::steady_clock::now() + tunnel_timeout;
    for (;;) {
        std::ifstream in(log);
        const std::string text((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
        if (text.find("remote forward success") != std::string::npos) {
            break;
        }
        const bool gave_up = !gateway_tunnel_->running();
        if (gave_up || std::chrono::steady_clock::now() > deadline) {
            throw InfrastructureError(
                "the worker's way to the gateway did not open" +
                    (gave_up ? std::string(" (ssh -R ended)")
                             : " within " + std::to_string(tunnel_timeout.count()) + " s") +
                    "; ssh said:\n" + proc::tail_lines(text, 5),
                "the worker's console shows whether its sshd still answers");
        }
        check_limits();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // apt is told to use it.
    const std::string proxy = "http://127.0.0.1:" + std::to_string(worker_gateway_port) + "/";
    const std::string apt_config =
        "Acquire::http::Proxy \"" + proxy + "\";\nAcquire::https::Proxy \"" + proxy + "\";\n";
    std::string output;
    if (chain_->last().run(clock_reset() + "printf '%s' '" + apt_config +
                               "' | sudo tee /etc/apt/apt.conf.d/90contractor-gateway >/dev/null",
                           output) != 0) {
        throw InfrastructureError("cannot point the worker's apt at the gateway: " + output);
    }
}

std::string JobRunner::clock_reset() const {
    if (!instruction_clock_) {
        return {};
    }
    // The time when the command is sent: the channel opens a few seconds later, so the worker
    // stays at most that much behind, and files copied in are never in its future by more.
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return "sudo -n date -u -s @" + std::to_string(now) + " >/dev/null 2>&1; ";
}

ordered_json JobRunner::usage() const {
    ordered_json network = {{"bytes_up", 0},
                            {"bytes_down", 0},
                            {"allowed", 0},
                            {"blocked", 0},
                            {"attempts", ordered_json::array()}};
    if (gateway_) {
        const auto gateway_usage = gateway_->usage();
        network["bytes_up"] = gateway_usage.bytes_up;
        network["bytes_down"] = gateway_usage.bytes_down;
        int allowed = 0;
        int blocked = 0;
        for (const auto& attempt : gateway_usage.attempts) {
            (attempt.allowed ? allowed : blocked) += 1;
            network["attempts"].push_back({{"host", attempt.host},
                                           {"port", attempt.port},
                                           {"protocol", policy::to_string(attempt.protocol)},
                                           {"phase", attempt.phase},
                                           {"allowed", attempt.allowed}});
        }
        network["allowed"] = allowed;
        network["blocked"] = blocked;
    }
    double cpu = last_cpu_seconds_.value_or(0.0);
    if (machine_) {
        cpu = machine_->domain().cpu_seconds().value_or(cpu);
    }
    return {{"cpu_seconds", std::round(cpu * 100) / 100},
            {"disk_bytes", machine_ ? machine_->disk_usage() : 0},
            {"network", network}};
}

void JobRunner::keep_worker_for_debugging(ordered_json& result) {
    if (!job_.keep_worker || !machine_) {
        return;
    }
    // The credentials stay in the run folder, readable by this user only, for `contractor
    // shell`; `contractor gc` removes the worker and the folder.
    const fs::path access = machine_->run_directory() / "access.json";
    const ordered_json info = {{"name", machine_->name()},
                               {"host", machine_->endpoint().host},
                               {"port", machine_->endpoint().port},
                               {"user", machine_->endpoint().user},
                               {"host_key", machine_->endpoint().pinned_host_key}};
    util::write_private_file(access, info.dump(2) + "\n");
    util::write_private_file(machine_->run_directory() / "client_key",
                             machine_->endpoint().private_key);
    machine_->keep();
    result["worker"] = machine_->name();
}

ordered_json JobRunner::run() {
    ordered_json result = {{"type", "result"}};
    std::optional<LimitHit> limit;
    int build_status = -1;
    bool provisioned = true;
    try {
        boot();
        provisioned = provision();
        if (provisioned) {
            copy_in();
            build_status = run_build();
        }
    } catch (const LimitHit& hit) {
        limit = hit;
    }
    // The workspace comes back whatever the build did, so its logs can be read; after a hard
    // limit the worker is stopped at once instead and nothing comes back.
    if (!limit && provisioned) {
        copy_out();
    }
    end_phase();

    if (limit) {
        result["result"] = "limit-exceeded";
        result["exit_code"] = to_int(ExitCode::limit_exceeded);
        result["limit"] = limit->limit;
        result["message"] = limit->message;
    } else if (!provisioned) {
        const auto blocked = usage()["network"]["blocked"].get<int>();
        result["result"] = blocked > 0 ? "network-violation" : "build-failed";
        result["exit_code"] =
            to_int(blocked > 0 ? ExitCode::limit_exceeded : ExitCode::build_failed);
        result["message"] =
            provision_failure_ + (blocked > 0 ? " (the worker tried to reach a host the provision "
                                                "policy does not allow)"
                                              : "");
    } else if (build_status != 0) {
        result["result"] = "build-failed";
        result["exit_code"] = to_int(ExitCode::build_failed);
        result["message"] = "the build script exited with " + std::to_string(build_status);
    } else {
        result["result"] = "success";
        result["exit_code"] = 0;
        result["message"] = "the build succeeded";
    }
    result["build_exit_status"] = build_status;
    result["workspace_exported"] = workspace_sent_;
    ordered_json phases = ordered_json::array();
    for (const auto& [name, seconds] : phases_) {
        phases.push_back({{"name", name}, {"seconds", std::round(seconds * 100) / 100}});
    }
    result["phases"] = phases;
    result["usage"] = usage();
    result["accel"] = accel_;
    if (result["exit_code"] != 0) {
        keep_worker_for_debugging(result);
    }
    return result;
}

} // namespace contractor::manager

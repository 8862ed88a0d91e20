#include "manager-agent/worker_session.hpp"

#include "connection/chain.hpp"
#include "connection/hop.hpp"
#include "gateway/address_policy.hpp"
#include "gateway/gateway.hpp"
#include "image/cache.hpp"
#include "manager-agent/job.hpp"
#include "manager-agent/ready_pool.hpp"
#include "manager-agent/watchdog.hpp"
#include "proc/process.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/private_file.hpp"
#include "virt/accel.hpp"
#include "virt/domain_xml.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <thread>

namespace contractor::manager {
namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

// The violation's message for what the card sent past the gateway.
std::string direct_attempt_text(const gateway::DirectAttempt& attempt) {
    const std::string where = attempt.transport == gateway::Transport::icmp
                                  ? attempt.address + " (icmp echo"
                                  : attempt.address + ":" + std::to_string(attempt.port) + " (" +
                                        std::string(gateway::to_string(attempt.transport));
    return "the worker tried to reach " + where + ", past the gateway) while " +
           (attempt.phase == "build" ? "building" : "provisioning") +
           ": its network card leads nowhere; tools reach allowed hosts through the proxy "
           "(http_proxy) and a tcp rule by its name";
}

// How long a worker may take to boot before the build is called an infrastructure failure
// (the job's timeout and CPU time are checked throughout as well). Under TCG the worker needs
// about 10 s; inside the manager VM under TCG about 400 s, and more with two booting side by
// side. A kernel panic stops the domain at once (panic=-1), so this bound only matters for a
// worker that hangs.
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
// ticks come per instruction, not per second (measured in tests/README.md "Nested builds under
// TCG"). Only for TCG: with KVM the guest runs at its own speed.
constexpr unsigned nested_instruction_clock_shift = 4;

std::uint64_t allocated_bytes(const fs::path& file) {
    struct stat status {};
    if (::stat(file.c_str(), &status) != 0) {
        return 0;
    }
    return static_cast<std::uint64_t>(status.st_blocks) * 512;
}

std::string gib(std::uint64_t bytes) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f GiB", static_cast<double>(bytes) / (1ULL << 30));
    return text;
}

// The overlay may grow to the whole disk limit: it must fit where it lives, or the worker
// would be paused by QEMU when the host's (or the manager's) disk fills.
void check_free_space(const fs::path& folder, std::uint64_t disk_bytes, bool in_manager) {
    fs::create_directories(folder);
    struct statvfs status {};
    if (::statvfs(folder.c_str(), &status) != 0) {
        return; // cannot tell: QEMU's pause on a write error is still noticed by the watchdog
    }
    const std::uint64_t free_bytes =
        static_cast<std::uint64_t>(status.f_bavail) * static_cast<std::uint64_t>(status.f_frsize);
    if (free_bytes < disk_bytes) {
        throw InfrastructureError(
            "the worker's disk limit of " + gib(disk_bytes) + " does not fit in the " +
                gib(free_bytes) + " free in " + folder.string() +
                (in_manager ? " inside the manager VM" : " on this host") +
                ", so nothing was started",
            in_manager ? "lower 'disk' in the spec's limits or the config's, or give the manager "
                         "a larger disk (config manager.disk; then 'contractor manager destroy')"
                       : "free space there, or lower 'disk' in the spec's limits or the config's");
    }
}

std::string format_seconds(double seconds) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f s", seconds);
    return text;
}

} // namespace

// The host's view of one Machine, for the watchdog.
class MachineProbe : public WorkerProbe {
public:
    // `cpu_before`: what a ready worker spent before this build took it (its boot and idle
    // time), which is not the build's.
    MachineProbe(vm::Machine& machine, std::uint64_t image_allocation, double cpu_before)
        : machine_(machine), image_allocation_(image_allocation), cpu_before_(cpu_before) {}

    std::optional<double> cpu_seconds() override {
        const auto seconds = machine_.domain().cpu_seconds();
        return seconds ? std::optional<double>(std::max(*seconds - cpu_before_, 0.0)) : seconds;
    }
    std::uint64_t disk_allocation() override { return machine_.disk_usage() + image_allocation_; }
    bool paused_on_write_error() override { return machine_.domain().paused_on_io_error(); }
    std::uint64_t console_size() override {
        struct stat status {};
        return ::stat(machine_.console_path().c_str(), &status) == 0
                   ? static_cast<std::uint64_t>(status.st_size)
                   : 0;
    }
    std::string console_bytes(std::uint64_t offset, std::size_t limit) override {
        std::ifstream in(machine_.console_path(), std::ios::binary);
        in.seekg(static_cast<std::streamoff>(offset));
        std::string text(limit, '\0');
        in.read(text.data(), static_cast<std::streamsize>(limit));
        text.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
        return text;
    }
    void stop() override { machine_.stop(); }

private:
    vm::Machine& machine_;
    std::uint64_t image_allocation_;
    double cpu_before_;
};

void check_boot_files(const WorkerImage& image, const image::Layer* layer,
                      const std::function<void()>& between_chunks) {
    if (!virt::in_manager_vm()) {
        return;
    }
    const auto check = [&between_chunks](const fs::path& file, const std::string& expected,
                                         const std::string& what, const std::string& since) {
        if (expected.empty()) {
            throw InfrastructureError(what + " in the manager has no recorded digest of its " +
                                          file.filename().string() + "; it was not booted",
                                      "rebuild it on the host ('contractor image build NAME' "
                                      "after 'contractor image rm NAME'); the build copies the "
                                      "new entry in");
        }
        const std::string digest = image::fresh_file_sha256(file, between_chunks);
        if (digest != expected) {
            throw InfrastructureError(what + " in the manager changed since it was " + since +
                                          " (its " + file.filename().string() + " hashes to " +
                                          digest.substr(0, 16) + ", not " + expected.substr(0, 16) +
                                          "); it was not booted",
                                      "run 'contractor manager destroy' and build again; the "
                                      "manager may have been tampered with");
        }
    };
    if (image.entry) {
        const std::string what =
            "the cached image " + image.entry->name + "-" + image.entry->digest;
        // QEMU boots these two directly: a changed kernel or initrd is a changed worker.
        // First, since they are small.
        check(image.entry->kernel(), image.entry->kernel_sha256, what, "copied in");
        check(image.entry->initrd(), image.entry->initrd_sha256, what, "copied in");
        check(image.entry->disk(), image.entry->disk_sha256, what, "copied in");
    }
    if (layer) {
        check(layer->disk(), layer->disk_sha256,
              "the provisioned layer " + layer->key.substr(0, 12), "saved");
    }
}

WorkerImage resolve_worker_image(const protocol::Job& job) {
    const image::ImageCache cache(image::ImageCache::default_root());
    WorkerImage image;
    if (job.image_source == protocol::ImageSource::entry) {
        // NAME-DIGEST, copied into this cache by the CLI (nested topology).
        const auto dash = job.image.rfind('-');
        image.entry = dash == std::string::npos
                          ? std::nullopt
                          : cache.find(job.image.substr(0, dash), job.image.substr(dash + 1));
        if (!image.entry) {
            throw InfrastructureError("the image " + job.image + " is not in the manager's cache",
                                      "run the build again: the CLI copies it in");
        }
        image.path = image.entry->disk();
    } else if (job.image_source == protocol::ImageSource::cached) {
        image.entry = cache.newest(job.image);
        if (!image.entry) {
            throw UsageError("there is no cached image called '" + job.image + "'",
                             "build it with 'contractor image build " + job.image + "'");
        }
        image.path = image.entry->disk();
    } else {
        image.path = fs::absolute(job.image);
        if (!fs::is_regular_file(image.path)) {
            throw UsageError("worker image " + image.path.string() + " does not exist",
                             "build one with 'contractor image build worker --output FILE'");
        }
        // A copy of a cached image is known by its digest (memoised per file).
        image.entry = cache.find_by_disk(image::file_sha256(image.path, cache.root()));
    }
    return image;
}

vm::BootRequest worker_boot_request(const protocol::Job& job, const WorkerImage& image,
                                    const image::Layer* layer) {
    const image::ImageCache cache(image::ImageCache::default_root());
    const limits::Allowance allowance = allowance_for(job);
    vm::BootRequest request;
    request.image = image.path;
    request.cached_image = image.entry;
    // Nested: this side decides, a VM level below the CLI.
    const bool nested = job.accel == protocol::WorkerAccel::manager_decides;
    request.accel = nested ? virt::choose_accel(virt::AccelRequest::automatic).accel
                    : job.accel == protocol::WorkerAccel::kvm ? virt::Accel::kvm
                                                              : virt::Accel::tcg;
    // Only a worker inside the manager (the CLI left the choice to this side) is that slow; a
    // worker on the host keeps the host's clock.
    if (nested && request.accel == virt::Accel::tcg) {
        request.instruction_clock_shift = nested_instruction_clock_shift;
    }
    request.memory_bytes = allowance.memory_bytes;
    request.vcpus = static_cast<unsigned>(job.limits.cpus);
    request.disk_bytes = allowance.disk_bytes;
    request.runs_directory = cache.root().parent_path() / "runs";
    request.qemu_group = virt::qemu_file_group();
    request.exchange = true;
    if (layer) {
        request.layer = layer->disk();
    }
    return request;
}

WorkerSession::WorkerSession(const protocol::Job& job, limits::Budget& budget, Outbox& outbox,
                             const WorkerImage& worker_image, const image::Layer* layer)
    : job_(job), budget_(budget), outbox_(outbox) {
    const auto started = std::chrono::steady_clock::now();
    const image::ImageCache cache(image::ImageCache::default_root());
    const fs::path image = worker_image.path;
    const std::optional<image::CachedImage>& entry_to_boot = worker_image.entry;
    libvirt_ = std::make_unique<virt::Connection>(virt::default_uri());

    gateway::GatewayOptions options;
    options.upstream_proxy = job_.upstream_proxy;
    options.contractor_host_address = job_.contractor_host_address;
    options.rate = job_.limits.network_rate;
    options.charge_transfer = [this](std::uint64_t bytes) {
        return budget_.charge_network(bytes);
    };
    if (job_.on_violation == protocol::OnViolation::fail) {
        // The first refused attempt stops the job (the watchdog stops the worker).
        options.on_refused = [this](const gateway::Attempt& attempt) {
            budget_.record_violation(
                "the worker tried to reach " + attempt.host + ":" + std::to_string(attempt.port) +
                " (" + std::string(policy::to_string(attempt.protocol)) + ") while " +
                (attempt.phase == "build" ? "building" : "provisioning") + ": " + attempt.refusal);
        };
    }
    gateway_ = std::make_unique<gateway::Gateway>(job_.network, std::move(options));

    vm::BootRequest request = worker_boot_request(job_, worker_image, layer);
    request.give_up_starting = [this] {
        try {
            budget_.check();
            return false;
        } catch (...) {
            // A limit, a violation or a cancel; anything else stops the start too (this runs
            // on define_and_start's guard thread, which must not throw).
            return true;
        }
    };
    const bool nested = job_.accel == protocol::WorkerAccel::manager_decides;
    accel_ = std::string(virt::to_string(request.accel));
    instruction_clock_ = request.instruction_clock_shift.has_value();
    check_free_space(request.runs_directory, request.disk_bytes, nested);
    // A ready worker booted for exactly this (ready_pool.hpp) is taken when there is one.
    const std::string pool_key = ready_key(request, layer);
    double cpu_before = 0;
    if (const auto claimed = claim_ready_worker(request.runs_directory, pool_key)) {
        try {
            machine_ = vm::Machine::adopt(*libvirt_, *claimed, claimed_record_file);
            cpu_before = machine_->domain().cpu_seconds().value_or(0);
            outbox_.status("taking the ready worker " + machine_->name() +
                           " (booted before this build)");
        } catch (const InfrastructureError& error) {
            if (auto domain = libvirt_->find(claimed->filename().string())) {
                domain->destroy();
                domain->undefine();
            }
            std::error_code ignored;
            fs::remove_all(*claimed, ignored);
            outbox_.status(std::string("the ready worker could not be taken (") + error.what() +
                           "); booting a new one");
        }
    }
    if (!machine_) {
        // A ready worker's keeper checked these before it booted it.
        check_boot_files(worker_image, layer, [this] { budget_.check(); });
        try {
            machine_ = vm::Machine::boot(*libvirt_, cache, request);
        } catch (const InfrastructureError&) {
            // A start the job's deadline (or a cancel) stopped is that, not a failure.
            budget_.check();
            throw;
        }
    }
    // What the worker's disk holds beneath its overlay counts towards its disk limit.
    probe_ = std::make_unique<MachineProbe>(
        *machine_,
        allocated_bytes(entry_to_boot ? entry_to_boot->disk() : image) +
            (layer ? allocated_bytes(layer->disk()) : 0),
        cpu_before);
    watchdog_ = std::make_unique<Watchdog>(budget_, *probe_);
    outbox_.status("worker " + machine_->name() + " is booting (" + accel_ + ")");
    machine_->wait_until_ready(boot_timeout, [this] { budget_.check(); });
    budget_.check();
    chain_ = std::make_unique<connection::Chain>();
    // The session that proved the worker ready: a new one would cost the worker's sshd most
    // of a minute inside the manager VM under TCG.
    auto session = machine_->take_ready_session();
    session->set_channel_patience(channel_patience);
    chain_->add_ssh(machine_->endpoint(), std::move(session));
    if (const auto record = machine_->nic_record()) {
        nic_watch_ = std::make_unique<gateway::NicWatch>(
            *record,
            [this](const gateway::DirectAttempt& attempt) {
                if (job_.on_violation == protocol::OnViolation::fail) {
                    budget_.record_violation(direct_attempt_text(attempt));
                }
            },
            [this](const std::string& why) {
                // Attempts can no longer be seen: the build does not go on blind.
                budget_.record_violation(why + "; the worker's attempts past the gateway can "
                                               "no longer be seen");
            });
    } else {
        util::debug("network", "worker " + machine_->name() +
                                   " has no card record (booted by an older agent)");
    }
    outbox_.status(
        "worker ready after " +
        format_seconds(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()));
}

WorkerSession::~WorkerSession() = default;

connection::Hop& WorkerSession::worker() {
    return chain_->last();
}

void WorkerSession::write_ssh_credentials(const fs::path& folder) const {
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms::owner_all);
    const auto& endpoint = machine_->endpoint();
    util::write_private_file(folder / "client_key", endpoint.private_key);
    util::write_private_file(folder / "known_hosts", "[" + endpoint.host +
                                                         "]:" + std::to_string(endpoint.port) +
                                                         " " + endpoint.pinned_host_key + "\n");
}

void WorkerSession::enter_phase(policy::Phase phase) {
    if (nic_watch_) {
        // What the card sent so far belongs to the phase that ends.
        nic_watch_->begin_phase(std::string(policy::to_string(phase)));
    }
    gateway_->begin_phase(phase);
    // The ssh that carries the forwards ends, and with it every forwarded connection in the
    // worker: a daemon started in the previous phase keeps nothing open.
    gateway_tunnel_.reset();
    if (!job_.network.phase(phase).empty() || job_.on_violation == protocol::OnViolation::audit) {
        open_gateway_tunnel(phase);
    } else if (resolver_at_gateway_) {
        point_resolver_at_card();
    }
}

gateway::NicUsage WorkerSession::nic_usage() {
    return nic_watch_ ? nic_watch_->usage() : gateway::NicUsage{};
}

void WorkerSession::point_resolver_at_card() {
    // Back to what contractor-init set: a phase without a way out asks QEMU's DNS address,
    // which answers nothing; the question is seen in the card's record. Not a wall either.
    const std::string script = "set -e\n"
                               "rm -f /etc/resolv.conf /etc/apt/apt.conf.d/90contractor-gateway\n"
                               "printf 'nameserver " +
                               std::string(virt::guest_dns) +
                               "\\noptions attempts:1 timeout:1\\n' > /etc/resolv.conf\n"
                               "sed -i '/# contractor-gateway$/d' /etc/hosts\n";
    std::string output;
    // Not fatal: the worker may have broken sudo or its files while provisioning. Its names
    // then fail inside it, unseen, which the status line says; the walls are not in the worker.
    if (worker().run(clock_reset() + "sudo -n sh -c " + connection::shell_quote(script), output) !=
        0) {
        outbox_.status("could not point the worker's resolver back at its card (" +
                       proc::tail_lines(output, 1) +
                       "): names it looks up while building may not be reported");
    }
    resolver_at_gateway_ = false;
    budget_.check();
}

namespace {

// The worker's /etc/hosts lines for `phase`: allowed http and https names lead to its
// loopback (where the proxy listens; tools must use the proxy), tcp names to their own
// forwarded address. Wildcards and IP literals need no line.
std::string hosts_lines(const protocol::Job& job, const gateway::Gateway& gateway,
                        policy::Phase phase) {
    std::map<std::string, std::string> address_of;
    for (const auto& rule : job.network.phase(phase)) {
        const auto& host = rule.rule.host;
        if (rule.rule.protocol != policy::Protocol::tcp && !host.starts_with("*.") &&
            !gateway::canonical_ip(host)) {
            address_of.emplace(host, "127.0.0.1");
        }
    }
    for (const auto& endpoint : gateway.tcp_endpoints()) {
        if (endpoint.phase == phase) {
            address_of[endpoint.host] = endpoint.worker_address;
        }
    }
    std::string lines;
    for (const auto& [host, address] : address_of) {
        lines += address + " " + host + " # contractor-gateway\n";
    }
    return lines;
}

} // namespace

void WorkerSession::open_gateway_tunnel(policy::Phase phase) {
    // First the worker's side: names, resolver, apt, and leave to the worker's sshd (running
    // as the SSH user) the ports below 1024 the forwards need (DNS on 53, a tcp rule's own
    // port). Nothing here is a wall: the worker is root and may change all of it; it only
    // makes the allowed ways work. One channel (each costs seconds nested under TCG).
    const std::string proxy = "http://127.0.0.1:" + std::to_string(worker_gateway_port) + "/";
    // Pipelining is off: the gateway forwards one request per connection.
    const std::string apt_config = "Acquire::http::Proxy \"" + proxy +
                                   "\";\nAcquire::https::Proxy \"" + proxy +
                                   "\";\nAcquire::http::Pipeline-Depth \"0\";\n";
    const std::string script = "set -e\n"
                               "echo 0 > /proc/sys/net/ipv4/ip_unprivileged_port_start\n"
                               "rm -f /etc/resolv.conf\n"
                               "printf 'nameserver 127.0.0.1\\noptions use-vc attempts:1 "
                               "timeout:5\\n' > /etc/resolv.conf\n"
                               "sed -i '/# contractor-gateway$/d' /etc/hosts\n"
                               "printf '%s' " +
                               connection::shell_quote(hosts_lines(job_, *gateway_, phase)) +
                               " >> /etc/hosts\n"
                               "if [ -d /etc/apt/apt.conf.d ]; then printf '%s' " +
                               connection::shell_quote(apt_config) +
                               " > /etc/apt/apt.conf.d/90contractor-gateway; fi\n";
    std::string output;
    if (worker().run(clock_reset() + "sudo -n sh -c " + connection::shell_quote(script), output) !=
        0) {
        throw InfrastructureError("cannot point the worker's network at the gateway: " +
                                  proc::tail_lines(output, 5));
    }
    resolver_at_gateway_ = true;
    budget_.check();

    const fs::path folder = machine_->run_directory() / "gateway-tunnel";
    write_ssh_credentials(folder);
    const auto& endpoint = machine_->endpoint();
    std::vector<std::string> command = {
        "ssh", "-N", "-T", "-F", "/dev/null", "-i", (folder / "client_key").string(), "-o",
        "IdentitiesOnly=yes", "-o", "UserKnownHostsFile=" + (folder / "known_hosts").string(), "-o",
        "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes", "-o",
        "ExitOnForwardFailure=yes",
        // The default sntrup761 key exchange costs the
        // worker's sshd most of a minute inside the manager VM
        // under TCG; curve25519 alone is what libssh uses for
        // the job's own connection.
        "-o", "KexAlgorithms=curve25519-sha256,curve25519-sha256@libssh.org", "-o",
        "ServerAliveInterval=30", "-o", "ServerAliveCountMax=10", "-v", "-p",
        std::to_string(endpoint.port)};
    const auto forward = [&command](const std::string& worker_side, std::uint16_t local_port) {
        command.push_back("-R");
        command.push_back(worker_side + ":127.0.0.1:" + std::to_string(local_port));
    };
    forward("127.0.0.1:" + std::to_string(worker_gateway_port), gateway_->port());
    forward("127.0.0.1:53", gateway_->dns_port());
    std::size_t forwards = 2;
    for (const auto& tcp : gateway_->tcp_endpoints()) {
        if (tcp.phase == phase) {
            forward(tcp.worker_address + ":" + std::to_string(tcp.port), tcp.local_port);
            ++forwards;
        }
    }
    command.push_back(endpoint.user + "@" + endpoint.host);
    // A log per phase: the tunnel of the previous phase may still be writing its last lines.
    const fs::path log = folder / ("ssh-" + std::string(policy::to_string(phase)) + ".log");
    gateway_tunnel_ = std::make_unique<proc::BackgroundProcess>(command, log);
    // ssh says "remote forward success" (at -v) once the worker's sshd listens on a port; all
    // of them, and the tunnel is open. Its log is read here, in the manager: asking the worker
    // instead (ss in a loop) cost seconds of its only vCPU per try inside the manager VM under
    // TCG. ssh's log is ours (written by our ssh at -v), but what the worker's sshd sends
    // shows in it: only its first 64 KiB are read.
    const auto deadline = std::chrono::steady_clock::now() + tunnel_timeout;
    for (;;) {
        std::ifstream in(log);
        std::string text(64 * 1024, '\0');
        in.read(text.data(), static_cast<std::streamsize>(text.size()));
        text.resize(static_cast<std::size_t>(std::max<std::streamsize>(in.gcount(), 0)));
        std::size_t successes = 0;
        for (auto at = text.find("remote forward success"); at != std::string::npos;
             at = text.find("remote forward success", at + 1)) {
            ++successes;
        }
        if (successes >= forwards) {
            break;
        }
        const bool gave_up = !gateway_tunnel_->running();
        if (gave_up || std::chrono::steady_clock::now() > deadline) {
            throw InfrastructureError(
                "the worker's way to the gateway did not open" +
                    (gave_up ? std::string(" (ssh -R ended)")
                             : " within " + std::to_string(tunnel_timeout.count()) + " s") +
                    "; ssh said:\n" + proc::tail_lines(text, 5),
                "the worker's console shows whether its sshd still answers; a tcp rule needs "
                "'GatewayPorts clientspecified' in the worker's sshd (contractor's images have "
                "it)");
        }
        budget_.check();
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

void WorkerSession::look_now() {
    watchdog_->look();
}

std::string WorkerSession::clock_reset() const {
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

std::optional<double> WorkerSession::cpu_seconds() const {
    return probe_->cpu_seconds();
}

std::uint64_t WorkerSession::overlay_bytes() const {
    return machine_->disk_usage();
}

fs::path WorkerSession::split_disk() {
    return machine_->split_disk();
}

std::string WorkerSession::keep_for_debugging() {
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
    return machine_->name();
}

} // namespace contractor::manager

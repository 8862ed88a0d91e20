#include "vm/machine.hpp"

#include "proc/process.hpp"
#include "ssh/keys.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/log.hpp"
#include "util/private_file.hpp"
#include "util/text.hpp"
#include "virt/domain_xml.hpp"
#include "vm/lease.hpp"
#include "vm/seed.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace contractor::vm {
namespace fs = std::filesystem;

namespace {

// The exchange disk's file in the run folder, and the unit its size grows by.
constexpr const char* exchange_name = "exchange.img";
constexpr const char* nic_record_name = "nic.pcap";
constexpr std::uint64_t exchange_step = 1024 * 1024;

// The first bytes of `file`, up to `count`.
std::string read_prefix(const fs::path& file, std::size_t count) {
    std::ifstream in(file, std::ios::binary);
    std::string out(count, '\0');
    in.read(out.data(), static_cast<std::streamsize>(count));
    out.resize(static_cast<std::size_t>(in.gcount()));
    return out;
}

bool is_qcow2(const fs::path& file) {
    return read_prefix(file, 4) == std::string("QFI\xfb", 4);
}

// The first three sectors of the disk in `image`, whatever its format.
std::string first_sectors(const fs::path& image, const fs::path& scratch) {
    if (!is_qcow2(image)) {
        return read_prefix(image, 1536);
    }
    const fs::path raw = scratch / "first-sectors.raw";
    proc::run_checked({"qemu-img", "dd", "-f", "qcow2", "-O", "raw", "bs=512", "count=3",
                       "if=" + image.string(), "of=" + raw.string()});
    return read_prefix(raw, 1536);
}

} // namespace

int free_loopback_port() {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        throw InfrastructureError("cannot find a free port on 127.0.0.1");
    }
    close(fd);
    return ntohs(address.sin_port);
}

namespace {

// Gives `path` to `group` with `mode`; the run cannot go on without it.
void give_to_group(const fs::path& path, unsigned group, unsigned mode) {
    if (::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(group)) != 0 ||
        ::chmod(path.c_str(), static_cast<mode_t>(mode)) != 0) {
        throw InfrastructureError("cannot give " + path.string() +
                                      " to QEMU's group: " + std::strerror(errno),
                                  "the agent's account must be in the group libvirt-qemu");
    }
}

} // namespace

std::unique_ptr<Machine> Machine::boot(virt::Connection& connection, const image::ImageCache& cache,
                                       const BootRequest& request) {
    std::unique_ptr<Machine> machine(new Machine());
    machine->name_ =
        request.name_prefix + "-" + std::to_string(getpid()) + "-" + util::random_hex(6);
    machine->run_directory_ = request.runs_directory / machine->name_;
    fs::create_directories(machine->run_directory_);
    fs::permissions(machine->run_directory_, fs::perms::owner_all);
    const fs::path run = machine->run_directory_;
    // Before the domain exists: a process killed from here on leaves a folder whose lease says
    // whose it was, and the next job or `contractor gc` removes it.
    write_lease(run, lease_for_this_process(LeaseKind::build));

    const fs::path image = fs::absolute(request.image);
    if (!fs::is_regular_file(image)) {
        throw UsageError("worker image " + image.string() + " does not exist",
                         "build one with 'contractor image build worker --output FILE'");
    }
    virt::VmDefinition definition;
    definition.name = machine->name_;
    definition.accel = request.accel;
    definition.memory_bytes = request.memory_bytes;
    definition.vcpus = request.vcpus;
    definition.disk = run / "disk.qcow2";
    definition.seed = run / "seed.img";
    definition.console = run / "console.log";
    if (request.exchange) {
        definition.exchange = run / exchange_name;
    }
    definition.nvram = run / "efi-vars.fd";
    definition.nic_record = run / nic_record_name;
    definition.ssh_port = free_loopback_port();
    definition.instruction_clock_shift = request.instruction_clock_shift;

    const auto entry = request.cached_image
                           ? request.cached_image
                           : cache.find_by_disk(image::file_sha256(image, cache.root()));
    if (entry) {
        machine->direct_kernel_ = true;
        // contractor-init says "ready" on the console once sshd listens; the manager image's
        // systemd does not.
        machine->announces_ready_ = entry->init == "/usr/sbin/contractor-init";
        // panic=-1: a kernel panic reboots at once, which stops the domain (on_reboot is
        // destroy), so the boot wait reports it with the console instead of timing out.
        definition.direct_kernel = virt::DirectKernel{
            entry->kernel(), entry->initrd(),
            "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet panic=-1 init=" + entry->init};
    } else {
        const std::string sectors = first_sectors(image, run);
        // An unpartitioned ext4 disk (superblock magic 0xEF53 at byte 1080) is a contractor
        // image: it has no bootloader, and its kernel lives in the cache entry it came from.
        if (sectors.size() >= 1082 && sectors.substr(1080, 2) == std::string("\x53\xEF", 2)) {
            throw UsageError(image.string() + " is a contractor image whose cache entry is gone "
                                              "(it has no bootloader of its own)",
                             "rebuild it with 'contractor image build worker --output FILE'");
        }
        // A GPT disk (the "EFI PART" signature at LBA 1) boots through UEFI.
        definition.firmware = sectors.size() >= 520 && sectors.substr(512, 8) == "EFI PART"
                                  ? virt::Firmware::efi
                                  : virt::Firmware::bios;
    }
    // The format is named everywhere, never probed: the CLI checked the image's header for
    // this format (image/disk_check.hpp), and a probe could read it as another one.
    const std::string format = is_qcow2(image) ? "qcow2" : "raw";
    // A copy of a cached image (recognised by digest) is booted from the cache's own disk,
    // which has the same bytes: a provisioned layer then always has the cache's disk beneath
    // it, and a file beside a spec that changes mid-build changes nothing.
    const fs::path backing = request.layer ? fs::absolute(*request.layer)
                             : entry       ? entry->disk()
                                           : image;
    std::vector<std::string> create = {"qemu-img",
                                       "create",
                                       "-q",
                                       "-f",
                                       "qcow2",
                                       "-b",
                                       backing.string(),
                                       "-F",
                                       request.layer || entry ? "qcow2" : format,
                                       definition.disk.string()};
    if (request.disk_bytes > 0) {
        // A smaller disk than the image would cut the filesystem off: refuse it up front.
        const auto info = nlohmann::json::parse(
            proc::run_checked({"qemu-img", "info", "-f", format, "--output=json", image.string()}),
            nullptr, false);
        const std::uint64_t image_size =
            info.is_object() ? info.value("virtual-size", std::uint64_t{0}) : 0;
        if (request.disk_bytes < image_size) {
            throw UsageError("the disk limit (" + std::to_string(request.disk_bytes) +
                                 " bytes) is smaller than the worker image (" +
                                 std::to_string(image_size) + " bytes)",
                             "raise 'disk' in the spec's limits");
        }
        create.push_back(std::to_string(request.disk_bytes));
    }
    proc::run_checked(create, {}, "a disk limit smaller than the image cannot work");
    machine->qemu_group_ = request.qemu_group;
    if (request.qemu_group) {
        // QEMU's own account may enter the run folder, write the overlay and the console, and
        // read the seed (its keys are the worker's own); it can write nothing else of ours.
        give_to_group(run, *request.qemu_group, 0710);
        give_to_group(definition.disk, *request.qemu_group, 0660);
        std::ofstream(definition.console).flush();
        give_to_group(definition.console, *request.qemu_group, 0660);
    }
    // Made here, so that it is the agent's to read and to give blocks back (nic_watch.hpp).
    std::ofstream(definition.nic_record).flush();
    if (request.qemu_group) {
        give_to_group(definition.nic_record, *request.qemu_group, 0660);
    }
    if (request.exchange) {
        // Sparse, 1 MiB until a stream needs more: the guest can write no more than its size.
        std::ofstream(definition.exchange).flush();
        std::error_code error;
        fs::resize_file(definition.exchange, exchange_step, error);
        if (error) {
            throw InfrastructureError("cannot make " + definition.exchange.string() + ": " +
                                      error.message());
        }
        if (request.qemu_group) {
            give_to_group(definition.exchange, *request.qemu_group, 0660);
        }
    }

    const ssh::KeyPair host_key = ssh::generate_key_pair();
    const ssh::KeyPair client_key = ssh::generate_key_pair();
    SeedContents seed;
    seed.user = request.user;
    seed.hostname = request.user == "worker" ? "worker" : "contractor-" + request.user;
    seed.authorized_key = client_key.public_key;
    seed.host_private_key = host_key.private_key;
    seed.host_public_key = host_key.public_key;
    seed.network = virt::guest_network;
    seed.instance_id = machine->name_;
    write_seed(definition.seed, seed);
    if (request.qemu_group) {
        give_to_group(definition.seed, *request.qemu_group, 0640);
    }

    machine->endpoint_.port = definition.ssh_port;
    machine->endpoint_.user = request.user;
    machine->endpoint_.pinned_host_key = host_key.public_key;
    machine->endpoint_.private_key = client_key.private_key;

    util::debug("vm", "defining " + machine->name_);
    machine->domain_ = std::make_unique<virt::Domain>(
        connection.define_and_start(virt::domain_xml(definition), request.give_up_starting));
    machine->started_at_ = std::chrono::steady_clock::now();
    // The watchdog and the boot wait read the console: a libvirt that made it another
    // account's file would leave both blind until the boot timeout.
    if (::access(definition.console.c_str(), R_OK) != 0) {
        throw InfrastructureError("the console of " + machine->name_ + " (" +
                                      definition.console.string() +
                                      ") is not readable by this account after the start",
                                  "libvirt must leave the file to its owner (in the manager VM: "
                                  "qemu.conf stdio_handler = \"file\")");
    }
    return machine;
}

Machine::~Machine() {
    if (keep_) {
        return;
    }
    if (domain_) {
        domain_->destroy();
        domain_->undefine();
    }
    std::error_code error;
    fs::remove_all(run_directory_, error);
}

void Machine::hand_over(const std::string& file) {
    const nlohmann::json record = {
        {"name", name_},
        {"port", endpoint_.port},
        {"user", endpoint_.user},
        {"host_key", endpoint_.pinned_host_key},
        {"client_key", endpoint_.private_key},
        {"direct_kernel", direct_kernel_},
        {"announces_ready", announces_ready_},
        {"qemu_group", qemu_group_ ? nlohmann::json(*qemu_group_) : nlohmann::json(nullptr)}};
    util::write_private_file(run_directory_ / file, record.dump());
    keep_ = true;
}

std::unique_ptr<Machine> Machine::adopt(virt::Connection& connection, const fs::path& run_directory,
                                        const std::string& file) {
    std::ifstream in(run_directory / file);
    const auto record = nlohmann::json::parse(in, nullptr, false);
    if (!record.is_object()) {
        throw InfrastructureError("cannot read " + (run_directory / file).string());
    }
    std::unique_ptr<Machine> machine(new Machine());
    try {
        machine->name_ = record.at("name").get<std::string>();
        machine->run_directory_ = run_directory;
        machine->endpoint_.port = record.at("port").get<int>();
        machine->endpoint_.user = record.at("user").get<std::string>();
        machine->endpoint_.pinned_host_key = record.at("host_key").get<std::string>();
        machine->endpoint_.private_key = record.at("client_key").get<std::string>();
        machine->direct_kernel_ = record.at("direct_kernel").get<bool>();
        machine->announces_ready_ = record.at("announces_ready").get<bool>();
        if (record.at("qemu_group").is_number_unsigned()) {
            machine->qemu_group_ = record.at("qemu_group").get<unsigned>();
        }
    } catch (const nlohmann::json::exception& error) {
        throw InfrastructureError("the record " + (run_directory / file).string() +
                                  " is incomplete: " + error.what());
    }
    machine->domain_ = connection.find(machine->name_);
    if (!machine->domain_ || !machine->domain_->is_active()) {
        throw InfrastructureError("the VM " + machine->name_ + " is not running any more");
    }
    machine->started_at_ = std::chrono::steady_clock::now();
    return machine;
}

void Machine::keep() {
    write_lease(run_directory_, lease_for_this_process(LeaseKind::kept));
    keep_ = true;
}

std::uint64_t Machine::disk_usage() const {
    std::uint64_t total = 0;
    for (const char* file : {"disk.qcow2", "disk-top.qcow2"}) {
        struct stat status {};
        if (::stat((run_directory_ / file).c_str(), &status) == 0) {
            total += static_cast<std::uint64_t>(status.st_blocks) * 512;
        }
    }
    return total;
}

fs::path Machine::split_disk() {
    if (disk_split_) {
        throw InfrastructureError("the disk of " + name_ + " was split already");
    }
    const fs::path lower = run_directory_ / "disk.qcow2";
    const fs::path top = run_directory_ / "disk-top.qcow2";
    proc::run_checked({"qemu-img", "create", "-q", "-f", "qcow2", "-b", lower.string(), "-F",
                       "qcow2", top.string()});
    if (qemu_group_) {
        give_to_group(top, *qemu_group_, 0660);
    }
    domain_->move_writes_to("vda", top.string());
    disk_split_ = true;
    return lower;
}

std::optional<fs::path> Machine::exchange_file() const {
    const fs::path file = run_directory_ / exchange_name;
    std::error_code error;
    if (!fs::is_regular_file(file, error)) {
        return std::nullopt;
    }
    return file;
}

std::uint64_t Machine::resize_exchange(std::uint64_t bytes) {
    const auto file = exchange_file();
    if (!file) {
        throw InfrastructureError(name_ + " has no exchange disk");
    }
    std::error_code error;
    const std::uint64_t held = fs::file_size(*file, error);
    const std::uint64_t wanted = std::max(bytes, error ? 0 : held);
    const std::uint64_t size = (wanted + exchange_step - 1) / exchange_step * exchange_step;
    domain_->resize_disk("vdc", size);
    return size;
}

std::string Machine::console_tail(std::size_t lines) const {
    // Only the end is read: the guest writes the console, and a hostile one floods it (the
    // watchdog caps its size, but it grows between two looks).
    constexpr std::streamoff window = 64 * 1024;
    std::ifstream in(console_path(), std::ios::binary | std::ios::ate);
    const std::streamoff size = in ? static_cast<std::streamoff>(in.tellg()) : 0;
    in.seekg(std::max<std::streamoff>(0, size - window));
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return proc::tail_lines(text, lines);
}

std::filesystem::path Machine::console_path() const {
    return run_directory_ / "console.log";
}

std::optional<std::filesystem::path> Machine::nic_record() const {
    const fs::path file = run_directory_ / nic_record_name;
    std::error_code error;
    if (!fs::is_regular_file(file, error)) {
        return std::nullopt;
    }
    return file;
}

void Machine::wait_until_ready(std::chrono::seconds timeout, const std::function<void()>& check) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string last_error = "nothing answered on the SSH port";
    int attempts = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (check) {
            check();
        }
        if (util::cancel_requested()) {
            throw Interrupted(util::cancel_signal());
        }
        if (!domain_->is_active()) {
            throw InfrastructureError(
                "VM " + name_ + " stopped while booting; last console lines:\n" + console_tail(15));
        }
        const std::string console = console_tail(40);
        if (console.find("contractor-worker: error") != std::string::npos) {
            throw InfrastructureError("VM " + name_ + " failed to boot; last console lines:\n" +
                                      console_tail(15));
        }
        // QEMU accepts a forwarded connection before the guest's sshd listens and then sends
        // nothing, so an attempt made too early waits for its whole timeout. contractor-init
        // announces "ready" on the console once sshd listens: contractor's images are not
        // tried before that, and then with one attempt that may take the rest of the boot
        // bound. Inside the manager VM under TCG sshd's first banner and key exchange took
        // over 60 s on 2026-11-30; an abandoned attempt leaves its sshd child running on the
        // worker's one vCPU, so shorter attempts starved each other and none ever finished.
        // Other images get short attempts that grow to 5 s.
        const bool announced = console.find("contractor-worker: ready") != std::string::npos;
        if (announces_ready_ && !announced) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const auto attempt_timeout =
            announced ? std::max(left, std::chrono::milliseconds(1000))
                      : std::chrono::milliseconds(1000 * std::min(5, 1 + attempts / 3));
        ++attempts;
        try {
            ready_session_ = std::make_unique<ssh::Session>(endpoint_, std::chrono::seconds(60), -1,
                                                            attempt_timeout);
            return;
        } catch (const ssh::ConnectError& error) {
            // A cloud-init image may briefly run sshd before its keys are in place. Only the
            // pinned host key and the per-boot client key are ever accepted.
            last_error = error.what();
            util::debug("vm", "ssh attempt " + std::to_string(attempts) + ": " + last_error);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw InfrastructureError("VM " + name_ + " did not accept SSH within " +
                                  std::to_string(timeout.count()) + " s (" + last_error +
                                  "); last console lines:\n" + console_tail(15),
                              "a broken image or a kernel panic shows in the console lines");
}

} // namespace contractor::vm

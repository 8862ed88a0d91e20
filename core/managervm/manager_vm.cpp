#include "managervm/manager_vm.hpp"

#include "image/builder.hpp"
#include "image/recipe.hpp"
#include "proc/process.hpp"
#include "ssh/keys.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/folder_guard.hpp"
#include "util/log.hpp"
#include "util/private_file.hpp"
#include "util/text.hpp"
#include "virt/domain_xml.hpp"
#include "virt/libvirt.hpp"
#include "vm/machine.hpp"
#include "vm/seed.hpp"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sys/stat.h>
#include <thread>

namespace contractor::managervm {
namespace fs = std::filesystem;

namespace {

constexpr const char* user = "contractor";

std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

nlohmann::json to_json(const Record& record) {
    return {{"domain", record.domain},     {"libvirt_uri", record.libvirt_uri},
            {"image", record.image},       {"host_key", record.host_key},
            {"ssh_port", record.ssh_port}, {"created", record.created},
            {"started", record.started},   {"memory_bytes", record.memory_bytes},
            {"cpus", record.cpus},         {"disk_bytes", record.disk_bytes}};
}

Record from_json(const nlohmann::json& json) {
    Record record;
    record.domain = json.at("domain").get<std::string>();
    record.libvirt_uri = json.at("libvirt_uri").get<std::string>();
    record.image = json.at("image").get<std::string>();
    record.host_key = json.at("host_key").get<std::string>();
    record.ssh_port = json.at("ssh_port").get<int>();
    record.created = json.at("created").get<std::int64_t>();
    record.started = json.at("started").get<std::int64_t>();
    record.memory_bytes = json.at("memory_bytes").get<std::uint64_t>();
    record.cpus = json.at("cpus").get<unsigned>();
    record.disk_bytes = json.at("disk_bytes").get<std::uint64_t>();
    return record;
}

// The manager's seed: its identity and the client key. The host private key goes only on the
// first boot's seed; later seeds leave it out (the manager keeps the key it installed).
void write_manager_seed(const fs::path& file, const std::string& client_public,
                        const ssh::KeyPair* host_key) {
    vm::SeedContents seed;
    seed.hostname = "contractor-manager";
    seed.user = user;
    seed.authorized_key = client_public;
    if (host_key != nullptr) {
        seed.host_private_key = host_key->private_key;
        seed.host_public_key = host_key->public_key;
    }
    seed.network = virt::guest_network;
    // QEMU user networking's resolver: the manager's gateway resolves the hosts the workers
    // are allowed to reach.
    seed.dns = "10.0.2.3";
    seed.instance_id = "contractor-manager-" + util::random_hex(6);
    vm::write_seed(file, seed);
}

} // namespace

fs::path default_directory() {
    if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg != nullptr && xdg[0] == '/') {
        return fs::path(xdg) / "contractor" / "manager";
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        throw UsageError("HOME is not set, so there is no place for the manager VM's files",
                         "set HOME or XDG_DATA_HOME");
    }
    return fs::path(home) / ".local" / "share" / "contractor" / "manager";
}

Settings settings_from(const spec::ManagerConfig& config, const std::string& connect,
                       virt::Accel accel) {
    Settings settings;
    settings.libvirt_uri = !connect.empty()          ? connect
                           : !config.connect.empty() ? config.connect
                                                     : virt::default_uri();
    settings.directory = default_directory();
    settings.memory_bytes = config.memory;
    settings.cpus = static_cast<unsigned>(config.cpus);
    settings.disk_bytes = config.disk;
    settings.accel = accel;
    return settings;
}

ManagerVm::ManagerVm(Settings settings) : settings_(std::move(settings)) {
    const fs::path file = settings_.directory / "manager.json";
    std::error_code error;
    if (!fs::exists(file, error)) {
        return;
    }
    try {
        record_ = from_json(nlohmann::json::parse(read_text(file)));
    } catch (const nlohmann::json::exception& problem) {
        throw InfrastructureError("the manager's record " + file.string() +
                                      " is damaged: " + problem.what(),
                                  "'contractor manager destroy' removes the manager; the next "
                                  "build creates a new one");
    }
}

void ManagerVm::save_record() const {
    util::write_private_file(settings_.directory / "manager.json",
                             to_json(*record_).dump(2) + "\n");
}

std::optional<std::string> ManagerVm::domain_state() const {
    if (!record_) {
        return std::nullopt;
    }
    virt::Connection libvirt(record_->libvirt_uri);
    const auto domain = libvirt.find(record_->domain);
    if (!domain) {
        return std::nullopt;
    }
    return domain->state();
}

ssh::Endpoint ManagerVm::endpoint() const {
    if (!record_) {
        throw UsageError("there is no manager VM", "start one with 'contractor manager start'");
    }
    ssh::Endpoint endpoint;
    endpoint.host = "127.0.0.1";
    endpoint.port = record_->ssh_port;
    endpoint.user = user;
    endpoint.pinned_host_key = record_->host_key;
    endpoint.private_key = read_text(settings_.directory / "client_key");
    return endpoint;
}

std::string ManagerVm::console_tail(std::size_t lines) const {
    return proc::tail_lines(read_text(settings_.directory / "console.log"), lines);
}

std::uint64_t ManagerVm::disk_usage() const {
    std::uint64_t total = 0;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(settings_.directory, error)) {
        struct stat info {};
        if (::stat(entry.path().c_str(), &info) == 0) {
            total += static_cast<std::uint64_t>(info.st_blocks) * 512;
        }
    }
    return total;
}

void ManagerVm::create(const Say& say) {
    const image::Recipe recipe = image::load_recipe(image::recipes_directory(), "manager");
    const image::ImageCache cache(image::ImageCache::default_root());
    say("creating the manager VM in " + settings_.directory.string());
    const auto built =
        image::build_image(recipe, {}, cache, [&](const std::string& step, double seconds) {
            if (seconds >= 0) {
                say("manager image: " + step + " (" + std::to_string(static_cast<int>(seconds)) +
                    " s)");
            }
        });
    const image::CachedImage& image = built.image;

    fs::create_directories(settings_.directory);
    fs::permissions(settings_.directory, fs::perms::owner_all);
    util::FolderGuard guard(settings_.directory);
    const fs::path& folder = settings_.directory;
    // Its own copy of the disk, kernel and initrd: the manager outlives the image cache entry
    // it came from (contractor image rm, a newer manager image).
    proc::run_checked({"qemu-img", "convert", "-O", "qcow2", image.disk().string(),
                       (folder / "disk.qcow2").string()});
    const auto info = nlohmann::json::parse(
        proc::run_checked({"qemu-img", "info", "--output=json", (folder / "disk.qcow2").string()}),
        nullptr, false);
    const std::uint64_t image_size =
        info.is_object() ? info.value("virtual-size", std::uint64_t{0}) : 0;
    if (settings_.disk_bytes > image_size) {
        // The manager grows its root filesystem to the disk at boot (contractor-seed).
        proc::run_checked({"qemu-img", "resize", "-q", (folder / "disk.qcow2").string(),
                           std::to_string(settings_.disk_bytes)});
    }
    fs::copy_file(image.kernel(), folder / "vmlinuz", fs::copy_options::overwrite_existing);
    fs::copy_file(image.initrd(), folder / "initrd.img", fs::copy_options::overwrite_existing);

    const ssh::KeyPair host_key = ssh::generate_key_pair();
    const ssh::KeyPair client_key = ssh::generate_key_pair();
    util::write_private_file(folder / "client_key", client_key.private_key);
    util::write_private_file(folder / "client_key.pub", client_key.public_key + "\n");
    write_manager_seed(folder / "seed.img", client_key.public_key, &host_key);

    Record record;
    record.libvirt_uri = settings_.libvirt_uri;
    record.image = image.name + "-" + image.digest;
    record.host_key = host_key.public_key;
    record.created = std::time(nullptr);
    record.memory_bytes = settings_.memory_bytes;
    record.cpus = settings_.cpus;
    record.disk_bytes = std::max(settings_.disk_bytes, image_size);
    record_ = record;
    save_record();
    guard.release();
}

void ManagerVm::boot(const Say& say) {
    const fs::path& folder = settings_.directory;
    virt::VmDefinition definition;
    definition.name = record_->domain;
    definition.accel = settings_.accel;
    definition.memory_bytes = record_->memory_bytes;
    definition.vcpus = record_->cpus;
    definition.disk = folder / "disk.qcow2";
    definition.seed = folder / "seed.img";
    definition.console = folder / "console.log";
    // tsc=reliable: under TCG the kernel finds its two vCPUs' TSCs "unsynchronized" and falls
    // back to the HPET, so every clock read (the workers' QEMUs make many) becomes an emulated
    // MMIO exit. TCG's TSC is one host clock for all vCPUs. Measured: clock reads 1.8x as fast.
    definition.direct_kernel =
        virt::DirectKernel{folder / "vmlinuz", folder / "initrd.img",
                           "root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet panic=-1 "
                           "tsc=reliable init=/sbin/init"};
    // The manager's gateway connects out for the workers; the workers themselves stay behind
    // restrict=on inside it.
    definition.restrict_network = false;
    // A fresh port on every start: the last one may be taken by now.
    definition.ssh_port = vm::free_loopback_port();

    virt::Connection libvirt(record_->libvirt_uri);
    // The definition from the last start (a stopped domain) gives way to this one: libvirt
    // refuses a second definition under the same name with another UUID.
    if (auto previous = libvirt.find(record_->domain)) {
        previous->undefine();
    }
    say("starting the manager VM (" + std::string(virt::to_string(settings_.accel)) + ", " +
        std::to_string(record_->cpus) + " vCPUs, " + std::to_string(record_->memory_bytes >> 20) +
        " MiB) on " + record_->libvirt_uri);
    libvirt.define_and_start(virt::domain_xml(definition));
    record_->ssh_port = definition.ssh_port;
    record_->started = std::time(nullptr);
    save_record();
}

void ManagerVm::start(const Say& say) {
    if (!record_) {
        create(say);
    }
    const auto state = domain_state();
    if (state == std::string("running")) {
        return;
    }
    if (state && *state != "shut off") {
        throw InfrastructureError("the manager VM is " + *state,
                                  "'contractor manager stop' then 'contractor manager start'");
    }
    const auto started = std::chrono::steady_clock::now();
    const bool first_boot = record_->started == 0;
    boot(say);
    wait_for_ssh(std::chrono::seconds(300));
    if (first_boot) {
        // The host key is installed now; later boots' seeds carry only the client key.
        write_manager_seed(settings_.directory / "seed.img",
                           read_text(settings_.directory / "client_key.pub"), nullptr);
    }
    say("the manager VM answers on 127.0.0.1:" + std::to_string(record_->ssh_port) + " after " +
        std::to_string(static_cast<int>(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count())) +
        " s");
}

void ManagerVm::wait_for_ssh(std::chrono::seconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const ssh::Endpoint target = endpoint();
    virt::Connection libvirt(record_->libvirt_uri);
    std::string last_error = "nothing answered";
    int attempts = 0;
    while (std::chrono::steady_clock::now() < deadline) {
        if (util::cancel_requested()) {
            throw Interrupted(util::cancel_signal());
        }
        const auto domain = libvirt.find(record_->domain);
        if (!domain || !domain->is_active()) {
            throw InfrastructureError("the manager VM stopped while booting; last console "
                                      "lines:\n" +
                                          console_tail(15),
                                      "'contractor manager destroy' and start again if it "
                                      "keeps failing");
        }
        ++attempts;
        try {
            ssh::Session session(target, std::chrono::seconds(std::min(5, 1 + attempts / 3)));
            return;
        } catch (const ssh::ConnectError& error) {
            last_error = error.what();
            if (error.failure() == ssh::ConnectFailure::host_key_mismatch) {
                throw InfrastructureError(
                    "the manager VM presents another SSH host key than the one pinned at its "
                    "creation: " +
                        last_error,
                    "if you did not replace its disk, something else answers on its port; "
                    "'contractor manager destroy' creates a new manager");
            }
            util::debug("manager", "ssh attempt " + std::to_string(attempts) + ": " + last_error);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    throw InfrastructureError(
        "the manager VM does not answer on 127.0.0.1:" + std::to_string(record_->ssh_port) +
            " within " + std::to_string(timeout.count()) + " s (" + last_error +
            "); last console lines:\n" + console_tail(15),
        "'contractor manager stop' then 'contractor manager start'");
}

void ManagerVm::stop(std::chrono::seconds grace, const Say& say) {
    if (!record_) {
        return;
    }
    virt::Connection libvirt(record_->libvirt_uri);
    auto domain = libvirt.find(record_->domain);
    if (!domain || !domain->is_active()) {
        return;
    }
    say("stopping the manager VM");
    // ACPI first: systemd powers off cleanly, workers and all.
    try {
        domain->shutdown();
    } catch (const InfrastructureError& error) {
        util::debug("manager", error.what());
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (domain->is_active() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    if (domain->is_active()) {
        say("the manager VM did not power off within " + std::to_string(grace.count()) +
            " s; stopping it hard");
        domain->destroy();
    }
}

void ManagerVm::destroy(const Say& say) {
    if (!record_) {
        return;
    }
    {
        virt::Connection libvirt(record_->libvirt_uri);
        if (auto domain = libvirt.find(record_->domain)) {
            domain->destroy();
            domain->undefine();
        }
    }
    std::error_code error;
    fs::remove_all(settings_.directory, error);
    if (error) {
        throw InfrastructureError("cannot remove " + settings_.directory.string() + ": " +
                                  error.message());
    }
    say("removed the manager VM and its disk (" + settings_.directory.string() + ")");
    record_.reset();
}

} // namespace contractor::managervm

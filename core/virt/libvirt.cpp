#include "virt/libvirt.hpp"

#include "util/error.hpp"

#include <libvirt/virterror.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <grp.h>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace contractor::virt {

std::string last_libvirt_error() {
    const char* message = virGetLastErrorMessage();
    return message != nullptr ? message : "unknown libvirt error";
}

namespace {
void ignore_error(void*, virErrorPtr) {}
} // namespace

void silence_libvirt_errors() {
    virSetErrorFunc(nullptr, ignore_error);
}

bool in_manager_vm() {
    return ::access(manager_vm_marker, F_OK) == 0;
}

std::string default_uri() {
    // Inside the manager VM the system instance runs the workers' QEMU as libvirt-qemu, never
    // as the agent's account (HostProtection: a worker that escapes QEMU lands in an account
    // that can write neither the agent nor the cached images).
    return geteuid() == 0 || in_manager_vm() ? "qemu:///system" : "qemu:///session";
}

std::optional<unsigned> qemu_file_group() {
    if (geteuid() == 0 || !in_manager_vm()) {
        return std::nullopt;
    }
    const group* entry = ::getgrnam("libvirt-qemu");
    return entry != nullptr ? std::optional<unsigned>(entry->gr_gid) : std::nullopt;
}

std::string Domain::name() const {
    const char* name = virDomainGetName(domain_.get());
    return name != nullptr ? name : "";
}

bool Domain::is_active() const {
    return virDomainIsActive(domain_.get()) == 1;
}

std::string Domain::state() const {
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    if (virDomainGetState(domain_.get(), &state, &reason, 0) != 0) {
        return "unknown";
    }
    switch (state) {
    case VIR_DOMAIN_RUNNING:
        return "running";
    case VIR_DOMAIN_BLOCKED:
        return "running"; // waiting on a resource, but up
    case VIR_DOMAIN_PAUSED:
        return "paused";
    case VIR_DOMAIN_SHUTDOWN:
        return "shutting down";
    case VIR_DOMAIN_SHUTOFF:
        return "shut off";
    case VIR_DOMAIN_CRASHED:
        return "crashed";
    case VIR_DOMAIN_PMSUSPENDED:
        return "suspended";
    default:
        return "unknown";
    }
}

bool Domain::paused_on_io_error() const {
    int state = VIR_DOMAIN_NOSTATE;
    int reason = 0;
    return virDomainGetState(domain_.get(), &state, &reason, 0) == 0 &&
           state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_IOERROR;
}

std::string Domain::xml() const {
    char* text = virDomainGetXMLDesc(domain_.get(), 0);
    if (text == nullptr) {
        return "";
    }
    std::string out(text);
    free(text); // NOLINT: libvirt's allocation
    return out;
}

std::optional<double> Domain::cpu_seconds() const {
    virDomainInfo info{};
    if (virDomainGetInfo(domain_.get(), &info) != 0 || info.cpuTime == 0) {
        return std::nullopt;
    }
    return static_cast<double>(info.cpuTime) / 1e9;
}

void Domain::destroy() {
    if (is_active()) {
        virDomainDestroy(domain_.get());
    }
}

void Domain::move_writes_to(const std::string& target, const std::string& new_top) {
    std::string disks;
    // Every disk but `target` stays as it is (the seed is read-only anyway).
    char* text = virDomainGetXMLDesc(domain_.get(), 0);
    const std::string description = text != nullptr ? text : "";
    free(text); // NOLINT: libvirt's allocation
    for (auto at = description.find("<target dev='"); at != std::string::npos;
         at = description.find("<target dev='", at + 1)) {
        const auto start = at + 13;
        const std::string dev = description.substr(start, description.find('\'', start) - start);
        if (dev != target && dev.starts_with("vd")) {
            disks += "<disk name='" + dev + "' snapshot='no'/>";
        }
    }
    const std::string xml = "<domainsnapshot><disks><disk name='" + target +
                            "' snapshot='external'><driver type='qcow2'/><source file='" + new_top +
                            "'/></disk>" + disks + "</disks></domainsnapshot>";
    virDomainSnapshotPtr snapshot = virDomainSnapshotCreateXML(
        domain_.get(), xml.c_str(),
        VIR_DOMAIN_SNAPSHOT_CREATE_DISK_ONLY | VIR_DOMAIN_SNAPSHOT_CREATE_NO_METADATA |
            VIR_DOMAIN_SNAPSHOT_CREATE_REUSE_EXT | VIR_DOMAIN_SNAPSHOT_CREATE_ATOMIC);
    if (snapshot == nullptr) {
        throw InfrastructureError("libvirt cannot move " + name() + "'s writes to " + new_top +
                                  ": " + last_libvirt_error());
    }
    virDomainSnapshotFree(snapshot);
}

void Domain::resize_disk(const std::string& target, std::uint64_t bytes) {
    if (virDomainBlockResize(domain_.get(), target.c_str(), bytes, VIR_DOMAIN_BLOCK_RESIZE_BYTES) !=
        0) {
        throw InfrastructureError("libvirt cannot resize " + name() + "'s disk " + target + ": " +
                                  last_libvirt_error());
    }
}

void Domain::shutdown() {
    if (is_active() && virDomainShutdown(domain_.get()) != 0) {
        throw InfrastructureError("libvirt cannot shut down " + name() + ": " +
                                  last_libvirt_error());
    }
}

std::string Domain::undefine() {
    // NVRAM files belong to the run's own directory, removed with it. A managed save image is
    // what a session libvirtd leaves of a domain that ran when it shut down (the manager VM
    // powered off mid-build): it would block the undefine, and nothing resumes a worker.
    constexpr unsigned flags = VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
                               VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA;
    if (virDomainUndefineFlags(domain_.get(), flags) != 0 &&
        virDomainUndefine(domain_.get()) != 0) {
        return last_libvirt_error();
    }
    return {};
}

Connection::Connection(const std::string& uri) : uri_(uri) {
    silence_libvirt_errors();
    connection_.reset(virConnectOpen(uri.c_str()));
    if (!connection_) {
        throw InfrastructureError(
            "cannot connect to libvirt at " + uri + ": " + last_libvirt_error(),
            uri == "qemu:///system" ? "run contractor as a normal user (it needs no root and "
                                      "uses qemu:///session), or start libvirtd"
                                    : "is libvirt installed (scripts/install-deps)?");
    }
}

Domain Connection::define_and_start(const std::string& xml, const std::function<bool()>& give_up) {
    DomainPtr domain(virDomainDefineXML(connection_.get(), xml.c_str()));
    if (!domain) {
        throw InfrastructureError("libvirt refused the VM definition: " + last_libvirt_error());
    }
    // The guard: libvirt's calls are thread-safe on one connection, and destroying a domain
    // that is starting kills its QEMU first, which makes the start fail at once.
    std::mutex mutex;
    std::condition_variable finished;
    bool started = false;
    std::thread guard;
    if (give_up) {
        guard = std::thread([&] {
            std::unique_lock lock(mutex);
            while (!finished.wait_for(lock, std::chrono::milliseconds(200),
                                      [&started] { return started; })) {
                if (give_up()) {
                    virDomainDestroy(domain.get());
                    return;
                }
            }
        });
    }
    const int status = virDomainCreate(domain.get());
    {
        const std::lock_guard lock(mutex);
        started = true;
    }
    finished.notify_all();
    if (guard.joinable()) {
        guard.join();
    }
    if (status != 0) {
        const std::string error = last_libvirt_error();
        virDomainUndefineFlags(domain.get(), VIR_DOMAIN_UNDEFINE_NVRAM);
        throw InfrastructureError("the VM would not start: " + error,
                                  "check that qemu-system-x86 is installed");
    }
    return Domain(std::move(domain));
}

std::vector<std::string> Connection::domain_names() {
    virDomainPtr* domains = nullptr;
    const int count = virConnectListAllDomains(connection_.get(), &domains, 0);
    if (count < 0) {
        throw InfrastructureError("cannot list libvirt domains: " + last_libvirt_error());
    }
    std::vector<std::string> names;
    for (int i = 0; i < count; ++i) {
        const DomainPtr domain(domains[i]);
        names.emplace_back(virDomainGetName(domain.get()));
    }
    free(domains);
    return names;
}

std::unique_ptr<Domain> Connection::find(const std::string& name) {
    DomainPtr domain(virDomainLookupByName(connection_.get(), name.c_str()));
    if (!domain) {
        return nullptr;
    }
    return std::make_unique<Domain>(std::move(domain));
}

} // namespace contractor::virt

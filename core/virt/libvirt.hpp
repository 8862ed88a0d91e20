#pragma once

#include <libvirt/libvirt.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

// Owning wrappers for libvirt handles. Every failure becomes an InfrastructureError carrying
// libvirt's own message and a hint.
namespace contractor::virt {

struct ConnectDeleter {
    void operator()(virConnectPtr connection) const { virConnectClose(connection); }
};
struct DomainDeleter {
    void operator()(virDomainPtr domain) const { virDomainFree(domain); }
};
using ConnectPtr = std::unique_ptr<virConnect, ConnectDeleter>;
using DomainPtr = std::unique_ptr<virDomain, DomainDeleter>;

// libvirt's message for the last failure on this thread.
std::string last_libvirt_error();

// Stops libvirt from printing its errors on stderr itself; they reach the user through our
// exceptions instead. Called once at start-up, and by Connection's constructor.
void silence_libvirt_errors();

// libvirt's per-user daemon, qemu:///session, for a normal user (NoRoot). As root, whose
// "session" is the system daemon, qemu:///system.
std::string default_uri();

// The file the manager image carries: contractor-manager runs inside the manager VM, where the
// workers' QEMU runs under libvirt's system instance as an account of its own.
inline constexpr const char* manager_vm_marker = "/etc/contractor/manager-vm";

// Whether this process runs inside contractor's manager VM.
bool in_manager_vm();

// The group the workers' QEMU runs as when this process (not root) uses the system instance
// inside the manager VM ("libvirt-qemu"), so that the files it must write (overlay, console)
// can be given to that group; nullopt elsewhere (the session instance runs QEMU as this user).
std::optional<unsigned> qemu_file_group();

class Domain {
public:
    explicit Domain(DomainPtr domain) : domain_(std::move(domain)) {}

    std::string name() const;
    bool is_active() const;
    // libvirt's state in words: "running", "paused", "shut off", "crashed", ...
    std::string state() const;
    // QEMU paused the guest because a write to one of its disks failed on the host (a full
    // host disk: QEMU's default werror=enospc/stop).
    bool paused_on_io_error() const;
    // The domain's current XML description.
    std::string xml() const;
    // Guest CPU time over all vCPUs so far, in seconds; nullopt when libvirt cannot tell
    // (the domain is off).
    std::optional<double> cpu_seconds() const;
    // Pulls the plug; quiet when the domain is already off.
    void destroy();
    // Asks the guest to power off (ACPI); returns at once.
    void shutdown();
    // Moves the running guest's writes to `new_top`, an existing qcow2 file whose backing file
    // is the disk `target` uses now (an external disk-only snapshot, no libvirt metadata): from
    // here on the old file only ever gets read. Other disks are left as they are. The guest
    // keeps running; its filesystem should be frozen around the call.
    void move_writes_to(const std::string& target, const std::string& new_top);
    // Gives the disk `target` (a raw file) a new size, `bytes` (a multiple of 512), while the
    // guest runs; the guest's kernel sees the change a moment later.
    void resize_disk(const std::string& target, std::uint64_t bytes);
    // Forgets the definition; quiet when it is already gone.
    // Removes the definition; returns libvirt's error, empty when it worked. Never throws:
    // destructors call it.
    std::string undefine();

private:
    DomainPtr domain_;
};

class Connection {
public:
    // Opens `uri` (e.g. qemu:///session). Throws InfrastructureError with a hint.
    explicit Connection(const std::string& uri);

    // Defines a persistent domain from XML and starts it. Starting is one libvirt call that
    // takes seconds under a busy system instance: `give_up` (when set) is asked every 200 ms
    // meanwhile, on another thread (it must not throw), and when it says true the domain is
    // destroyed at once, which ends the start; the call then throws InfrastructureError.
    Domain define_and_start(const std::string& xml, const std::function<bool()>& give_up = {});
    // Names of all domains, running or not.
    std::vector<std::string> domain_names();
    // The domain called `name`, or nullptr-like empty optional when there is none.
    std::unique_ptr<Domain> find(const std::string& name);

    const std::string& uri() const { return uri_; }

private:
    std::string uri_;
    ConnectPtr connection_;
};

} // namespace contractor::virt

#include "virt/domain_xml.hpp"

#include <sstream>

namespace contractor::virt {
namespace {

// Escapes text for an XML attribute or element.
std::string xml(const std::string& text) {
    std::string out;
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '\'':
            out += "&apos;";
            break;
        case '"':
            out += "&quot;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

// A PCI address on q35's root bus: the device is an integrated endpoint, so libvirt adds no
// PCIe root port (one more device for the guest to probe) for it.
std::string on_root_bus(int slot) {
    std::ostringstream out;
    out << "      <address type='pci' domain='0x0000' bus='0x00' slot='0x" << std::hex << slot
        << "' function='0x0'/>\n";
    return out.str();
}

constexpr const char* ovmf_code = "/usr/share/OVMF/OVMF_CODE_4M.fd";
constexpr const char* ovmf_vars = "/usr/share/OVMF/OVMF_VARS_4M.fd";

} // namespace

std::string domain_xml(const VmDefinition& vm) {
    std::ostringstream out;
    const bool efi = !vm.direct_kernel && vm.firmware == Firmware::efi;
    out << "<domain type='" << (vm.accel == Accel::kvm ? "kvm" : "qemu")
        << "' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>\n"
        << "  <name>" << xml(vm.name) << "</name>\n"
        << "  <memory unit='b'>" << vm.memory_bytes << "</memory>\n"
        << "  <vcpu>" << vm.vcpus << "</vcpu>\n"
        << "  <os>\n"
        // q35 for every VM. i440fx's ACPI _PRT method is a 128-step AML loop: in a worker
        // inside the manager under TCG it ran past ACPICA's 30 s loop limit, PCI interrupts
        // were left unrouted and the worker's sshd was never reached. q35's _PRT is a table.
        << "    <type arch='x86_64' machine='q35'>hvm</type>\n";
    if (vm.direct_kernel) {
        out << "    <kernel>" << xml(vm.direct_kernel->kernel.string()) << "</kernel>\n"
            << "    <initrd>" << xml(vm.direct_kernel->initrd.string()) << "</initrd>\n"
            << "    <cmdline>" << xml(vm.direct_kernel->command_line) << "</cmdline>\n";
    } else if (efi) {
        out << "    <loader readonly='yes' secure='no' type='pflash'>" << ovmf_code << "</loader>\n"
            << "    <nvram template='" << ovmf_vars << "'>" << xml(vm.nvram.string())
            << "</nvram>\n";
    }
    out << "  </os>\n"
        << "  <features><acpi/></features>\n";
    if (vm.accel == Accel::kvm) {
        out << "  <cpu mode='host-passthrough'/>\n";
    }
    out << "  <on_poweroff>destroy</on_poweroff>\n"
        << "  <on_reboot>destroy</on_reboot>\n"
        << "  <on_crash>destroy</on_crash>\n"
        << "  <devices>\n"
        << "    <disk type='file' device='disk'>\n"
        << "      <driver name='qemu' type='qcow2' discard='unmap'/>\n"
        << "      <source file='" << xml(vm.disk.string()) << "'/>\n"
        << "      <target dev='vda' bus='virtio'/>\n"
        << on_root_bus(0x04) << "    </disk>\n"
        << "    <disk type='file' device='disk'>\n"
        << "      <driver name='qemu' type='raw'/>\n"
        << "      <source file='" << xml(vm.seed.string()) << "'/>\n"
        << "      <target dev='vdb' bus='virtio'/>\n"
        << "      <readonly/>\n"
        << on_root_bus(0x05) << "    </disk>\n";
    if (!vm.exchange.empty()) {
        // The workspace's tar streams (vm::BootRequest::exchange). QEMU's raw driver keeps
        // no cache of its own: the agent's reads and writes of the file and the guest's meet
        // in the host's page cache.
        out << "    <disk type='file' device='disk'>\n"
            << "      <driver name='qemu' type='raw'/>\n"
            << "      <source file='" << xml(vm.exchange.string()) << "'/>\n"
            << "      <target dev='vdc' bus='virtio'/>\n"
            << "      <serial>" << exchange_serial << "</serial>\n"
            << on_root_bus(0x07) << "    </disk>\n";
    }
    out << "    <serial type='file'>\n"
        << "      <source path='" << xml(vm.console.string()) << "'/>\n"
        << "      <target port='0'/>\n"
        << "    </serial>\n"
        << "    <video><model type='none'/></video>\n"
        // Entropy from the host: without it sshd waits seconds for the guest's pool.
        << "    <rng model='virtio'>\n"
        << "      <backend model='random'>/dev/urandom</backend>\n"
        << on_root_bus(0x06)
        << "    </rng>\n"
        // No USB controller: nothing uses it, and each device costs probe time under TCG.
        << "    <controller type='usb' model='none'/>\n"
        << "    <memballoon model='none'/>\n"
        << "  </devices>\n"
        // libvirt's own <interface type='user'> has no port forwards with the slirp backend
        // in libvirt 9.0, so the NIC is passed to QEMU directly. romfile= drops the iPXE
        // option ROM, which costs seconds of firmware time under TCG.
        << "  <qemu:commandline>\n"
        << "    <qemu:arg value='-netdev'/>\n"
        << "    <qemu:arg value='user,id=contractor0,restrict="
        << (vm.restrict_network ? "on" : "off") << ",hostfwd=tcp:127.0.0.1:" << vm.ssh_port << "-"
        << guest_address << ":22'/>\n"
        << "    <qemu:arg value='-device'/>\n"
        << "    <qemu:arg value='virtio-net-pci,netdev=contractor0,romfile=,addr=0x10'/>\n";
    if (!vm.nic_record.empty()) {
        // queue=rx: what the netdev receives, i.e. what the guest sends. A comma in the path
        // is doubled, as QEMU's option syntax wants.
        std::string file;
        for (const char c : vm.nic_record.string()) {
            file += c == ',' ? std::string(",,") : std::string(1, c);
        }
        out << "    <qemu:arg value='-object'/>\n"
            << "    <qemu:arg value='filter-dump,id=contractor-nic-record,netdev=contractor0,"
               "queue=rx,maxlen="
            << nic_snapshot_length << ",file=" << xml(file) << "'/>\n";
    }
    if (vm.instruction_clock_shift && vm.accel == Accel::tcg) {
        // sleep=on: while the guest idles, its clock follows the host's.
        out << "    <qemu:arg value='-icount'/>\n"
            << "    <qemu:arg value='shift=" << *vm.instruction_clock_shift << ",sleep=on'/>\n";
    }
    out << "  </qemu:commandline>\n"
        << "</domain>\n";
    return out.str();
}

} // namespace contractor::virt

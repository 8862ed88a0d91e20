#include "virt/domain_xml.hpp"

#include <catch2/catch.hpp>

using namespace contractor::virt;
using Catch::Matchers::Contains;

namespace {

VmDefinition definition() {
    VmDefinition vm;
    vm.name = "contractor-worker-1-abc";
    vm.memory_bytes = 512ULL * 1024 * 1024;
    vm.vcpus = 2;
    vm.disk = "/runs/x/disk.qcow2";
    vm.seed = "/runs/x/seed.img";
    vm.console = "/runs/x/console.log";
    vm.nvram = "/runs/x/efi-vars.fd";
    vm.ssh_port = 40022;
    return vm;
}

} // namespace

TEST_CASE("a direct-kernel worker under TCG", "[virt]") {
    VmDefinition vm = definition();
    vm.direct_kernel = DirectKernel{"/cache/vmlinuz", "/cache/initrd.img", "root=/dev/vda rw"};
    const std::string xml = domain_xml(vm);
    CHECK_THAT(xml, Contains("<domain type='qemu'"));
    CHECK_THAT(xml, Contains("<memory unit='b'>536870912</memory>"));
    CHECK_THAT(xml, Contains("<vcpu>2</vcpu>"));
    CHECK_THAT(xml, Contains("<kernel>/cache/vmlinuz</kernel>"));
    CHECK_THAT(xml, Contains("<cmdline>root=/dev/vda rw</cmdline>"));
    CHECK_THAT(xml, Contains("<source file='/runs/x/seed.img'/>"));
    CHECK_THAT(xml, Contains("<readonly/>"));
    CHECK_THAT(xml, Contains("<rng model='virtio'>"));
    // The guest can open no connection; the only way in is loopback to its sshd.
    CHECK_THAT(xml, Contains("user,id=contractor0,restrict=on,hostfwd=tcp:127.0.0.1:40022-"
                             "10.0.2.15:22"));
    CHECK_THAT(xml, !Contains("<loader"));
    CHECK_THAT(xml, !Contains("host-passthrough"));
}

TEST_CASE("the exchange disk is a third, writable raw disk found by its serial", "[virt]") {
    VmDefinition vm = definition();
    CHECK_THAT(domain_xml(vm), !Contains("vdc"));
    vm.exchange = "/runs/x/exchange.img";
    const std::string xml = domain_xml(vm);
    const auto disk = xml.substr(xml.find("<source file='/runs/x/exchange.img'/>"));
    CHECK_THAT(disk.substr(0, disk.find("</disk>")),
               Contains("<target dev='vdc' bus='virtio'/>") &&
                   Contains("<serial>contractor-exchange</serial>") && !Contains("readonly"));
    CHECK_THAT(xml, Contains("<driver name='qemu' type='raw'/>\n      <source "
                             "file='/runs/x/exchange.img'/>"));
}

TEST_CASE("a foreign GPT image boots through UEFI without Secure Boot", "[virt]") {
    VmDefinition vm = definition();
    vm.firmware = Firmware::efi;
    vm.accel = Accel::kvm;
    const std::string xml = domain_xml(vm);
    CHECK_THAT(xml, Contains("<domain type='kvm'"));
    CHECK_THAT(xml, Contains("machine='q35'"));
    CHECK_THAT(xml, Contains("secure='no' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd"));
    CHECK_THAT(xml, Contains("<nvram template='/usr/share/OVMF/OVMF_VARS_4M.fd'>"
                             "/runs/x/efi-vars.fd</nvram>"));
    CHECK_THAT(xml, Contains("<cpu mode='host-passthrough'/>"));
    CHECK_THAT(xml, !Contains("<kernel>"));
}

TEST_CASE("names and paths are XML-escaped", "[virt]") {
    VmDefinition vm = definition();
    vm.name = "a<b>&'c'";
    CHECK_THAT(domain_xml(vm), Contains("<name>a&lt;b&gt;&amp;&apos;c&apos;</name>"));
}

TEST_CASE("accelerator requests", "[virt]") {
    CHECK(parse_accel_request("auto") == AccelRequest::automatic);
    CHECK(parse_accel_request("kvm") == AccelRequest::kvm);
    CHECK(parse_accel_request("tcg") == AccelRequest::tcg);
    CHECK_THROWS(parse_accel_request("hvf"));
    CHECK(choose_accel(AccelRequest::tcg).accel == Accel::tcg);
}

TEST_CASE("the manager VM's NIC may connect out; a worker's never", "[virt]") {
    VmDefinition vm = definition();
    vm.restrict_network = false;
    CHECK_THAT(domain_xml(vm), Contains("user,id=contractor0,restrict=off,hostfwd=tcp:127.0.0.1:"
                                        "40022-10.0.2.15:22"));
    CHECK_THAT(domain_xml(definition()), Contains("restrict=on"));
}

TEST_CASE("a nested worker's clock counts instructions under TCG, never under KVM", "[virt]") {
    VmDefinition vm = definition();
    CHECK_THAT(domain_xml(vm), !Contains("-icount"));
    vm.instruction_clock_shift = 4;
    const std::string xml = domain_xml(vm);
    CHECK_THAT(xml, Contains("<qemu:arg value='-icount'/>\n"
                             "    <qemu:arg value='shift=4,sleep=on'/>"));
    // Still inside the one qemu:commandline element.
    CHECK(xml.find("-icount") < xml.find("</qemu:commandline>"));
    vm.accel = Accel::kvm;
    CHECK_THAT(domain_xml(vm), !Contains("-icount"));
}

TEST_CASE("the card's record: QEMU copies what the guest sends into a file", "[virt]") {
    VmDefinition vm = definition();
    CHECK_THAT(domain_xml(vm), !Contains("filter-dump"));
    vm.nic_record = "/runs/a,b/nic.pcap";
    const std::string xml = domain_xml(vm);
    CHECK_THAT(xml, Contains("<qemu:arg value='filter-dump,id=contractor-nic-record,"
                             "netdev=contractor0,queue=rx,maxlen=512,file=/runs/a,,b/nic.pcap'/>"));
    // After the netdev it watches.
    CHECK(xml.find("filter-dump") > xml.find("user,id=contractor0"));
}

#include "virt/accel.hpp"

#include "util/error.hpp"

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <linux/kvm.h>
#include <sstream>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace contractor::virt {
namespace {

bool cpu_has_virtualisation_flags() {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
        if (line.rfind("flags", 0) != 0) {
            continue;
        }
        std::istringstream words(line);
        std::string word;
        while (words >> word) {
            if (word == "vmx" || word == "svm") {
                return true;
            }
        }
    }
    return false;
}

// Runs in a forked child: a one-page guest whose only instruction is HLT. Exit code 0 when
// KVM ran it to the HLT.
[[noreturn]] void probe_child() {
    const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
        _exit(2);
    }
    const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    void* memory = mmap(nullptr, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (vm < 0 || memory == MAP_FAILED) {
        _exit(3);
    }
    static_cast<unsigned char*>(memory)[0] = 0xf4; // hlt
    kvm_userspace_memory_region region{};
    region.guest_phys_addr = 0x1000;
    region.memory_size = 0x1000;
    region.userspace_addr = reinterpret_cast<__u64>(memory);
    const int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    const int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 || vcpu < 0 || run_size <= 0) {
        _exit(4);
    }
    auto* run = static_cast<kvm_run*>(mmap(nullptr, static_cast<std::size_t>(run_size),
                                           PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
    kvm_sregs sregs{};
    kvm_regs regs{};
    if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
        _exit(5);
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    regs.rip = 0x1000;
    regs.rflags = 0x2;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0 ||
        ioctl(vcpu, KVM_RUN, 0) < 0) {
        _exit(6);
    }
    _exit(run->exit_reason == KVM_EXIT_HLT ? 0 : 7);
}

// Why KVM cannot be used, or an empty string when the probe VM ran.
std::string kvm_problem() {
    if (!cpu_has_virtualisation_flags()) {
        return "the CPU does not offer hardware virtualisation (no vmx/svm flag)";
    }
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        return std::string("/dev/kvm is not usable: ") + std::strerror(errno);
    }
    const pid_t child = fork();
    if (child < 0) {
        return std::string("cannot fork the KVM probe: ") + std::strerror(errno);
    }
    if (child == 0) {
        probe_child();
    }
    // Two seconds: the probe runs one instruction; anything slower is a broken /dev/kvm.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    int status = 0;
    while (waitpid(child, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return "/dev/kvm hangs (the probe VM did not halt within 2 s)";
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        return "/dev/kvm did not run the probe VM (step " +
               std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")";
    }
    return {};
}

} // namespace

AccelRequest parse_accel_request(std::string_view text) {
    if (text == "auto") {
        return AccelRequest::automatic;
    }
    if (text == "kvm") {
        return AccelRequest::kvm;
    }
    if (text == "tcg") {
        return AccelRequest::tcg;
    }
    throw UsageError("unknown accelerator '" + std::string(text) + "'", "use auto, kvm or tcg");
}

std::string_view to_string(Accel accel) {
    return accel == Accel::kvm ? "kvm" : "tcg";
}

AccelChoice choose_accel(AccelRequest request) {
    if (request == AccelRequest::tcg) {
        return {Accel::tcg, "TCG (software emulation), as requested"};
    }
    const std::string problem = kvm_problem();
    if (problem.empty()) {
        return {Accel::kvm, "KVM"};
    }
    if (request == AccelRequest::kvm) {
        throw UsageError("KVM was requested but " + problem, "use --accel auto or tcg");
    }
    return {Accel::tcg, "using TCG (software emulation, slow): " + problem};
}

} // namespace contractor::virt

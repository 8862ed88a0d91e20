#pragma once

#include <string>
#include <string_view>

namespace contractor::virt {

// How QEMU runs guest code: hardware virtualisation or software emulation.
enum class Accel { kvm, tcg };

// What the user asked for: --accel auto|kvm|tcg (or the config key `accel`).
enum class AccelRequest { automatic, kvm, tcg };

struct AccelChoice {
    Accel accel;
    std::string reason; // one line for the user, e.g. why KVM is not used
};

AccelRequest parse_accel_request(std::string_view text); // throws UsageError
std::string_view to_string(Accel accel);

// Decides the accelerator. `auto` uses KVM only when the CPU advertises vmx or svm, /dev/kvm
// opens, and a probe VM (one HLT instruction) runs to its HLT in a child process within two
// seconds: some machines have a /dev/kvm that hangs guests, and that must cost a notice, never
// a hang. `kvm` fails (UsageError) when the probe fails; `tcg` never probes.
AccelChoice choose_accel(AccelRequest request);

} // namespace contractor::virt

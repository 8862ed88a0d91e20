#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace contractor::spec {

// The hard limits of one build, in base units (bytes, seconds, bytes per second). A limit that
// is not set here falls back to the user config, then to the built-in default.
struct Limits {
    std::optional<std::uint64_t> cpus;             // virtual CPUs of the worker
    std::optional<std::uint64_t> memory;           // worker RAM, bytes
    std::optional<std::uint64_t> disk;             // worker disk size, bytes
    std::optional<std::uint64_t> cpu_time;         // guest CPU seconds over all vCPUs
    std::optional<std::uint64_t> timeout;          // wall-clock seconds for the whole build
    std::optional<std::uint64_t> network_rate;     // bytes per second through the gateway
    std::optional<std::uint64_t> network_transfer; // bytes through the gateway in total
    std::optional<std::uint64_t> log_size;         // bytes of build output kept and streamed
    std::optional<std::uint64_t> export_size;      // bytes of workspace accepted back
};

// How a limit is written and shown.
enum class LimitKind { count, size, duration, rate };

// One row of the limit schema: the key in YAML, the field, its kind, the smallest value that
// makes sense, the built-in default and what it limits.
struct LimitField {
    std::string_view key;
    std::optional<std::uint64_t> Limits::*member;
    LimitKind kind;
    std::uint64_t minimum;
    std::uint64_t builtin_default;
    std::string_view meaning;
};

inline constexpr std::uint64_t MiB = 1024 * 1024;
inline constexpr std::uint64_t GiB = 1024 * MiB;

// Every limit, in the order they are documented and printed. The defaults suit a small C or
// C++ build on a laptop; the user config changes them for every build, a spec for one.
inline constexpr std::array<LimitField, 9> limit_fields = {{
    {"cpus", &Limits::cpus, LimitKind::count, 1, 1, "virtual CPUs"},
    // Debian with sshd and a compiler does not boot in less than 64 MiB.
    {"memory", &Limits::memory, LimitKind::size, 64 * MiB, 1 * GiB, "RAM"},
    {"disk", &Limits::disk, LimitKind::size, 1 * MiB, 8 * GiB, "disk size"},
    {"cpu-time", &Limits::cpu_time, LimitKind::duration, 1, 3600, "CPU time, all vCPUs"},
    {"timeout", &Limits::timeout, LimitKind::duration, 1, 7200, "wall-clock time"},
    {"network-rate", &Limits::network_rate, LimitKind::rate, 1, 20'000'000 / 8,
     "network bandwidth"},
    {"network-transfer", &Limits::network_transfer, LimitKind::size, 1, 2 * GiB,
     "network bytes in total"},
    {"log-size", &Limits::log_size, LimitKind::size, 1, 64 * MiB, "build log size"},
    {"export-size", &Limits::export_size, LimitKind::size, 1, 4 * GiB, "exported workspace size"},
}};

// The unit a limit of this kind is stored in, for JSON output.
constexpr std::string_view base_unit(LimitKind kind) {
    switch (kind) {
    case LimitKind::count:
        return "count";
    case LimitKind::size:
        return "bytes";
    case LimitKind::duration:
        return "seconds";
    case LimitKind::rate:
        return "bytes/s";
    }
    return "";
}

} // namespace contractor::spec

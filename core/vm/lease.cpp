#include "vm/lease.hpp"

#include "util/private_file.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>
#include <unistd.h>

namespace contractor::vm {
namespace fs = std::filesystem;

namespace {

constexpr const char* lease_file = "lease.json";

} // namespace

std::string_view to_string(LeaseKind kind) {
    switch (kind) {
    case LeaseKind::kept:
        return "kept";
    case LeaseKind::ready:
        return "ready";
    case LeaseKind::build:
        break;
    }
    return "build";
}

std::optional<unsigned long long> process_start(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // The command name, field 2, is in parentheses and may hold spaces: count from its end.
    const auto close = text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream fields(text.substr(close + 1));
    std::string field;
    // Field 3 (state) is the first after ')'; the start time is field 22.
    for (int index = 3; index <= 22; ++index) {
        if (!(fields >> field)) {
            return std::nullopt;
        }
    }
    try {
        return std::stoull(field);
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

Lease lease_for_this_process(LeaseKind kind) {
    return {kind, getpid(), process_start(getpid()).value_or(0)};
}

void write_lease(const fs::path& run_directory, const Lease& lease) {
    const nlohmann::json json = {{"kind", to_string(lease.kind)},
                                 {"owner", lease.owner},
                                 {"owner_start", lease.owner_start}};
    util::write_private_file(run_directory / lease_file, json.dump() + "\n");
}

std::optional<Lease> read_lease(const fs::path& run_directory) {
    std::ifstream in(run_directory / lease_file);
    if (!in) {
        return std::nullopt;
    }
    const auto json = nlohmann::json::parse(in, nullptr, false);
    if (!json.is_object()) {
        return std::nullopt;
    }
    Lease lease;
    const std::string kind = json.value("kind", "");
    lease.kind = kind == "kept"    ? LeaseKind::kept
                 : kind == "ready" ? LeaseKind::ready
                                   : LeaseKind::build;
    lease.owner = json.value("owner", 0);
    lease.owner_start = json.value("owner_start", 0ULL);
    return lease;
}

bool holder_alive(const Lease& lease) {
    const auto start = process_start(lease.owner);
    return lease.owner > 0 && start && *start == lease.owner_start;
}

} // namespace contractor::vm

#include "vm/leftovers.hpp"

#include "vm/lease.hpp"

#include <csignal>
#include <fstream>
#include <regex>
#include <set>

namespace contractor::vm {
namespace fs = std::filesystem;

namespace {

// Names Machine::boot gives: PREFIX-PID-HEX, PREFIX starting with "contractor-".
bool is_contractor_vm(const std::string& name) {
    static const std::regex pattern("contractor-[a-z-]+-[0-9]+-[0-9a-f]+");
    return std::regex_match(name, pattern);
}

} // namespace

bool owner_alive(const std::string& name) {
    const std::size_t end = name.rfind('-');
    const std::size_t start = name.rfind('-', end - 1);
    if (end == std::string::npos || start == std::string::npos) {
        return false;
    }
    const pid_t pid = std::stoi(name.substr(start + 1, end - start - 1));
    if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) {
        return false;
    }
    // The pid may have been reused by an unrelated program since: only a contractor process
    // counts as the owner.
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string command;
    std::getline(comm, command);
    return command.rfind("contractor", 0) == 0 || command.rfind("vm_tests", 0) == 0 ||
           command.rfind("boot_to_ready", 0) == 0;
}

std::vector<std::string> remove_leftovers(virt::Connection& connection,
                                          const fs::path& runs_directory, Leftovers rule) {
    std::vector<std::string> removed;
    std::set<std::string> names;
    for (const auto& name : connection.domain_names()) {
        if (is_contractor_vm(name)) {
            names.insert(name);
        }
    }
    std::error_code error;
    if (fs::is_directory(runs_directory, error)) {
        for (const auto& entry : fs::directory_iterator(runs_directory, error)) {
            const std::string name = entry.path().filename().string();
            if (is_contractor_vm(name)) {
                names.insert(name);
            }
        }
    }
    for (const auto& name : names) {
        auto domain = connection.find(name);
        const auto lease = read_lease(runs_directory / name);
        bool in_use = false;
        switch (rule) {
        case Leftovers::not_running:
            in_use = domain && domain->is_active();
            break;
        case Leftovers::orphaned:
            in_use =
                lease ? lease->kind == LeaseKind::kept || holder_alive(*lease) : owner_alive(name);
            break;
        case Leftovers::orphaned_and_kept:
            // A ready worker whose reaper runs is in use (idle until a build claims it or its
            // idle time is up); `contractor manager stop` ends it with the manager.
            in_use =
                lease ? lease->kind != LeaseKind::kept && holder_alive(*lease) : owner_alive(name);
            break;
        }
        if (in_use) {
            continue;
        }
        if (domain) {
            domain->destroy();
            const std::string error_text = domain->undefine();
            removed.push_back(error_text.empty() ? "VM " + name
                                                 : "nothing of VM " + name + ": " + error_text);
        }
        if (fs::remove_all(runs_directory / name, error) > 0) {
            removed.push_back("files of " + name + " (" + (runs_directory / name).string() + ")");
        }
    }
    return removed;
}

std::vector<WorkerInfo> list_workers(virt::Connection& connection, const fs::path& runs_directory) {
    std::vector<WorkerInfo> workers;
    for (const auto& name : connection.domain_names()) {
        if (name.rfind("contractor-worker-", 0) != 0) {
            continue;
        }
        const auto domain = connection.find(name);
        if (!domain) {
            continue;
        }
        WorkerInfo info;
        info.name = name;
        info.running = domain->is_active();
        info.cpu_seconds = domain->cpu_seconds();
        const auto lease = read_lease(runs_directory / name);
        info.lease = lease ? std::string(to_string(lease->kind)) : "none";
        workers.push_back(std::move(info));
    }
    return workers;
}

} // namespace contractor::vm

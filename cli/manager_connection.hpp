#pragma once

#include "cli/context.hpp"
#include "connection/chain.hpp"
#include "managervm/manager_vm.hpp"

#include <filesystem>
#include <string>

// What `contractor build` and `contractor manager` share: finding the manager VM, starting it
// when it is not running, and the connection to it with the agent installed.
namespace contractor::cli {

// contractor-manager: $CONTRACTOR_MANAGER, else beside this program.
std::filesystem::path manager_program();

// The manager VM for the user config and --connect (empty: the config's, else the default).
managervm::ManagerVm open_manager(const spec::UserConfig& config, const std::string& connect,
                                  const std::string& accel_option);

// A connection host -> manager, with the agent installed there.
struct ManagerLink {
    connection::Chain chain;
    std::string agent; // the agent's path on the manager
};

// Starts the manager when it is not running (saying so on `err`), connects to it and installs
// the agent. Throws InfrastructureError (exit 4) naming the cause when the manager does not
// answer.
ManagerLink connect_manager(managervm::ManagerVm& manager, std::ostream& err);

// The manager's libvirt state once it settles: nullopt when it has no domain; "running" only
// if it still says so after up to 10 s (a manager powering off keeps saying it for a while).
std::optional<std::string> settled_state(managervm::ManagerVm& manager);

// The error to report when the connection to the manager broke or never came: names the
// manager's state (shut off, paused, gone), or says that it runs but does not answer.
[[noreturn]] void explain_lost_manager(managervm::ManagerVm& manager, const std::string& what);

} // namespace contractor::cli

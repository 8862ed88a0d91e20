#include "cli/manager_connection.hpp"

#include "image/cache.hpp"
#include "managervm/uploads.hpp"
#include "util/error.hpp"
#include "util/install_layout.hpp"
#include "virt/accel.hpp"

#include <chrono>
#include <cstdlib>
#include <ostream>
#include <thread>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

// How long the CLI waits for a running manager's sshd: with up to 10 s more for libvirt's state
// to settle, a manager that does not answer is reported within 30 s; a healthy one answers in a
// few.
constexpr std::chrono::seconds connect_timeout(15);

} // namespace

fs::path manager_program() {
    const util::InstallLayout layout = util::install_layout();
    std::error_code error;
    if (!fs::exists(layout.agent, error)) {
        throw InfrastructureError(
            "contractor-manager is not installed at " + layout.agent.string(),
            layout.build_tree ? "build both: cmake --build build"
                              : "reinstall contractor, or set CONTRACTOR_MANAGER to the agent");
    }
    return layout.agent;
}

managervm::ManagerVm open_manager(const spec::UserConfig& config, const std::string& connect,
                                  const std::string& accel_option) {
    const auto accel = virt::choose_accel(
        virt::parse_accel_request(accel_option.empty() ? config.accel : accel_option));
    return managervm::ManagerVm(managervm::settings_from(config.manager, connect, accel.accel));
}

std::optional<std::string> settled_state(managervm::ManagerVm& manager) {
    // A manager powering off still counts as running for a few seconds after its sshd went:
    // give libvirt's state up to 10 s to say what happened.
    std::optional<std::string> state;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
        try {
            state = manager.domain_state();
        } catch (const Error&) {
            state = "unknown";
        }
        if (state != std::string("running") || std::chrono::steady_clock::now() > deadline) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return state;
}

void explain_lost_manager(managervm::ManagerVm& manager, const std::string& what) {
    const auto state = settled_state(manager);
    if (!state) {
        throw InfrastructureError("the manager VM is gone (its libvirt domain no longer exists): " +
                                      what,
                                  "'contractor manager start' creates it again");
    }
    if (*state == "paused") {
        throw InfrastructureError("the manager VM is paused (libvirt): " + what,
                                  "resume it (virsh resume contractor-manager) or 'contractor "
                                  "manager stop' and start it again");
    }
    if (*state != "running") {
        throw InfrastructureError("the manager VM is " + *state + " (libvirt): " + what,
                                  "'contractor manager start' boots it again; the worker that "
                                  "ran inside it is gone with it");
    }
    throw InfrastructureError("the manager VM is running but does not answer: " + what,
                              "'contractor manager status' shows whether it answers");
}

ManagerLink connect_manager(managervm::ManagerVm& manager, std::ostream& err) {
    const auto say = [&err](const std::string& line) {
        err << "contractor: " << line << std::endl;
    };
    const auto state = manager.domain_state();
    if (state && *state != "running" && *state != "shut off") {
        // Paused, crashed, shutting down: starting it would hide what happened.
        throw InfrastructureError("the manager VM is " + *state + " (libvirt), so it cannot answer",
                                  "'contractor manager stop' then 'contractor manager start'");
    }
    const bool starting = state != std::string("running");
    if (starting) {
        say(manager.created() ? "the manager VM is not running; starting it"
                              : "there is no manager VM yet; creating and starting it");
        manager.start(say);
    }
    ManagerLink link;
    try {
        link.chain.add_ssh(manager.endpoint(), connect_timeout);
    } catch (const ssh::ConnectError& error) {
        explain_lost_manager(manager, std::string("cannot connect to 127.0.0.1:") +
                                          std::to_string(manager.endpoint().port) + " within " +
                                          std::to_string(connect_timeout.count()) + " s (" +
                                          error.what() + ")");
    } catch (const InfrastructureError& error) {
        explain_lost_manager(manager, error.what());
    }
    link.agent = managervm::install_agent(link.chain.last(), manager_program(),
                                          image::ImageCache::default_root());
    if (starting) {
        // Workers of builds that the manager's last stop or crash cut short.
        std::string removed;
        if (link.chain.last().run(link.agent + " gc", removed) == 0 && !removed.empty()) {
            say("inside the manager: " + removed.substr(0, removed.find_last_not_of('\n') + 1));
        }
    }
    return link;
}

} // namespace contractor::cli

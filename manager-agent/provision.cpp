// Provisioning: the spec's `install:` packages with apt, then its `ansible:` playbook with the
// real ansible-playbook, run here against the worker with the per-boot key and the pinned host
// key. Both reach the network only through the gateway, with the provision policy.
#include "connection/local_hop.hpp"
#include "manager-agent/job_runner.hpp"
#include "proc/process.hpp"
#include "util/error.hpp"
#include "util/folder_guard.hpp"
#include "util/private_file.hpp"
#include "vm/machine.hpp"

#include <array>
#include <cstdlib>
#include <fstream>

namespace contractor::manager {
namespace fs = std::filesystem;

namespace {

// Streams a command's output to the CLI as provisioning log lines until it ends; returns its
// exit status. `check` runs between reads (limits, cancellation).
int stream_command(connection::RemoteCommand& command, Outbox& outbox,
                   const std::function<void(std::size_t)>& check) {
    std::array<char, 65536> buffer{};
    for (;;) {
        check(0);
        const auto count =
            command.read(buffer.data(), buffer.size(), std::chrono::milliseconds(200));
        if (count && *count == 0) {
            break;
        }
        if (count) {
            outbox.log("stdout", "provision", std::string_view(buffer.data(), *count));
            check(*count);
        }
    }
    return command.wait();
}

} // namespace

bool JobRunner::provision() {
    if (job_.install.empty() && (job_.ansible.is_null() || job_.ansible.empty())) {
        return true;
    }
    begin_phase("provision");
    open_gateway_tunnel();
    const auto check = [this](std::size_t bytes) {
        log_bytes_ += bytes;
        check_limits();
    };
    const auto to_stderr = [this](std::string_view chunk) {
        outbox_.log("stderr", "provision", chunk);
    };

    if (!job_.install.empty()) {
        std::string packages;
        for (const auto& package : job_.install) {
            packages += " " + connection::shell_quote(package);
        }
        outbox_.status("installing" + packages + " with apt");
        auto command =
            chain_->last().start("sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                                 "--no-install-recommends -o Dpkg::Use-Pty=0 --" +
                                     packages,
                                 to_stderr);
        command->close_write();
        if (const int status = stream_command(*command, outbox_, check); status != 0) {
            provision_failure_ =
                "installing packages with apt failed (exit " + std::to_string(status) + ")";
            return false;
        }
    }

    if (!job_.ansible.is_null() && !job_.ansible.empty()) {
        const fs::path folder = machine_->run_directory() / "ansible";
        // The pinned host key, and nothing else: ansible's ssh must refuse any other.
        write_ssh_credentials(folder);
        fs::create_directories(folder / "tmp");
        const auto& endpoint = machine_->endpoint();
        const nlohmann::json inventory = {
            {"all",
             {{"hosts",
               {{"worker",
                 {{"ansible_host", endpoint.host},
                  {"ansible_port", endpoint.port},
                  {"ansible_ssh_private_key_file", (folder / "client_key").string()},
                  {"ansible_ssh_common_args",
                   "-o UserKnownHostsFile=" + (folder / "known_hosts").string() +
                       " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                       " -o IdentitiesOnly=yes"}}}}}}}};
        // JSON is YAML: ansible reads both files as they are.
        util::write_private_file(folder / "inventory.json", inventory.dump(2));
        util::write_private_file(folder / "playbook.json", job_.ansible.dump(2));

        // One SSH connection for the whole play, shared by every task through a control
        // socket: inside the manager VM under TCG each new connection costs the worker's sshd
        // most of a minute. The socket lives in a short private folder (a socket path may not
        // exceed 107 bytes) and the master is told to exit when the play ends.
        const auto control = util::FolderGuard::make_temporary("contractor-ssh");
        const std::string control_path = (control.path() / "cm").string();
        outbox_.status("running the ansible playbook");
        connection::LocalHop local;
        auto command = local.start_program(
            {"env",
             // The play's remote_user wins over this default, as in any ansible run.
             "ANSIBLE_REMOTE_USER=" + endpoint.user, "ANSIBLE_HOST_KEY_CHECKING=True",
             "ANSIBLE_RETRY_FILES_ENABLED=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_PIPELINING=True",
             // ansible's default 10 s bounds the SSH connect and the wait for sudo's answer:
             // inside the manager VM under TCG the worker needs more for either.
             "ANSIBLE_TIMEOUT=300", "ANSIBLE_HOME=" + (folder / "home").string(),
             "ANSIBLE_LOCAL_TEMP=" + (folder / "tmp").string(),
             "ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=300 -o ControlPath=" +
                 control_path,
             "ansible-playbook", "-i", (folder / "inventory.json").string(),
             (folder / "playbook.json").string()},
            to_stderr);
        command->close_write();
        const int status = stream_command(*command, outbox_, check);
        proc::ProcessOptions quick;
        quick.timeout = std::chrono::seconds(10);
        proc::run_process({"ssh", "-o", "ControlPath=" + control_path, "-O", "exit", "worker"},
                          quick);
        if (status != 0) {
            provision_failure_ = "the ansible playbook failed (ansible-playbook exited with " +
                                 std::to_string(status) + ")";
            return false;
        }
    }
    return true;
}

} // namespace contractor::manager

// Provisioning: the spec's `install:` packages with apt, then its `ansible:` playbook with
// ansible-playbook, both run *inside the worker*. The worker is its own Ansible controller
// (inventory host `worker` with ansible_connection=local): whatever the playbook says
// (`hosts: localhost`, `delegate_to`, `local_action`, lookups, `copy: src=`, `vars_files`)
// runs and reads in the disposable worker, never on the manager or the user's machine. Both
// reach the network only through the gateway, with the provision policy.
#include "connection/hop.hpp"
#include "manager-agent/job_runner.hpp"
#include "util/error.hpp"

#include <array>

namespace contractor::manager {

namespace {

// The exit status the playbook command uses to say "this image has no ansible-playbook". A
// hostile worker can forge it; it then gets the same error, about itself.
constexpr int no_ansible_status = 199;

// The inventory: the host `worker` is the worker itself, so the spec's `hosts: worker`,
// `remote_user` and `become` work as written (the local connection runs as the SSH user,
// `worker`, and become uses its passwordless sudo). A play for `localhost` uses Ansible's
// implicit localhost, which is the worker too.
constexpr const char* inventory =
    "worker ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n";

// Ansible's settings, generated: no ansible.cfg, environment or collection path of the spec's
// or the worker user's is read (ANSIBLE_CONFIG names this file, the environment is emptied).
// `gather_subset = min` trims implicit fact gathering to the cheap facts (distribution,
// python, user, date, environment, package manager); hardware and network facts cost most of
// a minute in a nested worker under TCG. A play can still ask for more with its own
// `gather_subset`, so the playbook itself is unchanged. `internal_poll_interval`: by default
// the controller checks its task workers every millisecond, a busy loop that takes the
// worker's one vCPU from the task it waits for (build-hostile-playbook under TCG: the
// worker's CPU 237 s -> 116 s, provisioning 325 s -> 104 s); 0.1 s costs a task at most a
// tenth of a second.
constexpr const char* ansible_config = "[defaults]\n"
                                       "internal_poll_interval = 0.1\n"
                                       "retry_files_enabled = False\n"
                                       "nocolor = True\n"
                                       "gather_subset = min\n"
                                       "deprecation_warnings = False\n"
                                       "interpreter_python = auto_silent\n";

// The command that runs the playbook in the worker, in one SSH channel (each channel costs the
// worker's sshd seconds inside the manager VM under TCG): the playbook arrives on stdin and is
// written beside the generated inventory and config, in a fresh private folder.
std::string playbook_command() {
    return std::string("set -e\n"
                       "command -v ansible-playbook >/dev/null 2>&1 || exit ") +
           std::to_string(no_ansible_status) +
           "\n"
           // ansible-playbook's worker processes need POSIX shared memory (multiprocessing),
           // which a minimal init may leave unmounted (contractor-init of the current worker
           // images does): "Unable to use multiprocessing ... /dev/shm: Permission denied".
           "[ -w /dev/shm ] || sudo -n mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm\n"
           "folder=$(mktemp -d /tmp/contractor-ansible.XXXXXX)\n"
           "cat > \"$folder/playbook.json\"\n"
           "printf '%s' " +
           connection::shell_quote(inventory) +
           " > \"$folder/inventory\"\n"
           "printf '%s' " +
           connection::shell_quote(ansible_config) +
           " > \"$folder/ansible.cfg\"\n"
           "cd \"$folder\"\n"
           "exec env -i HOME=\"$HOME\" USER=\"$USER\" LOGNAME=\"$USER\" "
           "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LANG=C.UTF-8 "
           "ANSIBLE_CONFIG=\"$folder/ansible.cfg\" ANSIBLE_LOCAL_TEMP=\"$folder/tmp\" "
           "ansible-playbook -i \"$folder/inventory\" \"$folder/playbook.json\" </dev/null\n";
}

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
    const bool has_playbook = !job_.ansible.is_null() && !job_.ansible.empty();
    if (job_.install.empty() && !has_playbook) {
        return true;
    }
    begin_phase("provision");
    open_gateway_tunnel();
    const auto check = [this](std::size_t bytes) {
        log_bytes_ += bytes;
        check_limits();
    };
    const auto to_stderr = [this](std::string_view chunk) {
        log_bytes_ += chunk.size();
        outbox_.log("stderr", "provision", chunk);
    };

    if (!job_.install.empty()) {
        std::string packages;
        for (const auto& package : job_.install) {
            packages += " " + connection::shell_quote(package);
        }
        outbox_.status("installing" + packages + " with apt");
        auto command = chain_->last().start(
            clock_reset() +
                "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
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

    if (has_playbook) {
        outbox_.status("running the ansible playbook in the worker");
        auto command = chain_->last().start(clock_reset() + playbook_command(), to_stderr);
        const std::string playbook =
            job_.ansible.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        command->write(playbook.data(), playbook.size());
        command->close_write();
        const int status = stream_command(*command, outbox_, check);
        if (status == no_ansible_status) {
            throw UsageError(
                "the worker image has no ansible-playbook, and the spec's 'ansible:' playbook "
                "runs inside the worker (never on the manager or this host)",
                "use contractor's worker image ('contractor image build worker'), install "
                "ansible-core in your image, or list Debian packages under 'install:' instead");
        }
        if (status != 0) {
            provision_failure_ = "the ansible playbook failed (ansible-playbook exited with " +
                                 std::to_string(status) + " in the worker)";
            return false;
        }
    }
    return true;
}

} // namespace contractor::manager

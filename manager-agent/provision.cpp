// Provisioning: the spec's `install:` packages with apt, then its `ansible:` playbook with
// ansible-playbook, both run *inside the worker*. The worker is its own Ansible controller
// (inventory host `worker` with ansible_connection=local): whatever the playbook says
// (`hosts: localhost`, `delegate_to`, `local_action`, lookups, `copy: src=`, `vars_files`)
// runs and reads in the disposable worker, never on the manager or the user's machine. Both
// reach the network only through the gateway, with the provision policy.
#include "connection/hop.hpp"
#include "manager-agent/phases.hpp"
#include "util/error.hpp"

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
           // which a minimal init may leave unmounted (contractor-init mounts it since
           // 2026-12-01; an older image or another init may not): "Unable to use
           // multiprocessing ... /dev/shm: Permission denied".
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

} // namespace

std::optional<std::string> provision(JobContext& context) {
    const protocol::Job& job = context.job;
    const bool has_playbook = !job.ansible.is_null() && !job.ansible.empty();
    if (!job.provisions()) {
        return std::nullopt;
    }
    context.worker.enter_phase(policy::Phase::provision);
    Outbox& outbox = context.outbox;
    const auto to_log = [&outbox](std::string_view chunk) {
        outbox.log("stdout", "provision", chunk);
    };
    const auto to_stderr = context.pump.stderr_to(
        [&outbox](std::string_view chunk) { outbox.log("stderr", "provision", chunk); });

    if (!job.install.empty()) {
        std::string packages;
        for (const auto& package : job.install) {
            packages += " " + connection::shell_quote(package);
        }
        outbox.status("installing" + packages + " with apt");
        auto command = context.worker.worker().start(
            context.worker.clock_reset() +
                "sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                "--no-install-recommends -o Dpkg::Use-Pty=0 --" +
                packages,
            to_stderr);
        command->close_write();
        if (const int status = context.pump.drain(*command, limits::Meter::log, to_log);
            status != 0) {
            return "installing packages with apt failed (exit " + std::to_string(status) + ")";
        }
    }

    if (has_playbook) {
        outbox.status("running the ansible playbook in the worker");
        auto command = context.worker.worker().start(
            context.worker.clock_reset() + playbook_command(), to_stderr);
        const std::string playbook =
            job.ansible.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
        command->write(playbook.data(), playbook.size());
        command->close_write();
        const int status = context.pump.drain(*command, limits::Meter::log, to_log);
        if (status == no_ansible_status) {
            throw UsageError(
                "the worker image has no ansible-playbook, and the spec's 'ansible:' playbook "
                "runs inside the worker (never on the manager or this host)",
                "use contractor's worker image ('contractor image build worker'), install "
                "ansible-core in your image, or list Debian packages under 'install:' instead");
        }
        if (status != 0) {
            return "the ansible playbook failed (ansible-playbook exited with " +
                   std::to_string(status) + " in the worker)";
        }
    }
    return std::nullopt;
}

} // namespace contractor::manager

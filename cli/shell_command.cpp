#include "cli/command.hpp"
#include "cli/manager_connection.hpp"
#include "image/cache.hpp"
#include "spec/spec.hpp"
#include "util/error.hpp"
#include "util/private_file.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <unistd.h>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

// A kept worker's access: where its sshd listens (as seen from the machine that runs it), its
// pinned host key and its per-boot client key.
struct WorkerAccess {
    nlohmann::json access;
    std::string client_key;
};

std::optional<WorkerAccess> parse_access(const std::string& name, const std::string& text,
                                         std::string client_key) {
    auto access = nlohmann::json::parse(text, nullptr, false);
    if (!access.is_object()) {
        throw InfrastructureError("the access file of " + name + " is damaged");
    }
    return WorkerAccess{std::move(access), std::move(client_key)};
}

// A kept worker on this host (direct topology): its run folder here.
std::optional<WorkerAccess> access_on_this_host(const std::string& name, const fs::path& runs) {
    std::ifstream in(runs / name / "access.json");
    std::ifstream key(runs / name / "client_key");
    if (!in || !key) {
        return std::nullopt;
    }
    return parse_access(name, std::string(std::istreambuf_iterator<char>(in), {}),
                        std::string(std::istreambuf_iterator<char>(key), {}));
}

// A kept worker inside the running manager VM (nested topology): its run folder there, read
// over the manager's SSH connection.
std::optional<WorkerAccess> access_in_manager(const std::string& name,
                                              managervm::ManagerVm& manager, Context& context) {
    if (!manager.created() || !manager.running()) {
        return std::nullopt;
    }
    ManagerLink link = connect_manager(manager, context.err);
    const std::string folder = ".cache/contractor/runs/" + name;
    std::string output;
    if (link.chain.last().run("test -f " + connection::shell_quote(folder + "/access.json"),
                              output) != 0) {
        return std::nullopt;
    }
    return parse_access(name, link.chain.last().read_file(folder + "/access.json"),
                        link.chain.last().read_file(folder + "/client_key"));
}

// Replaces contractor with OpenSSH logged into the kept worker: a real terminal, the pinned
// host key, the worker's per-boot client key; through the manager VM when the worker runs
// there (ProxyCommand: OpenSSH to the manager with its pinned key, -W to the worker's port).
int open_shell(const std::string& name, const std::vector<std::string>& command, Context& context) {
    if (name.find('/') != std::string::npos || name.rfind("contractor-", 0) != 0) {
        throw UsageError("'" + name + "' is not a worker's name",
                         "use the name the build printed, contractor-worker-...");
    }
    const fs::path cache_root = image::ImageCache::default_root().parent_path();
    auto access = access_on_this_host(name, cache_root / "runs");
    std::optional<managervm::ManagerVm> manager;
    if (!access) {
        manager.emplace(open_manager(spec::load_user_config(context.config_location), "", ""));
        access = access_in_manager(name, *manager, context);
    }
    if (!access) {
        throw UsageError("there is no kept worker called '" + name + "'",
                         "'contractor build --keep-worker' keeps a failed worker and prints its "
                         "name");
    }
    // The credentials this shell uses, private to this user.
    const fs::path folder = cache_root / "shell" / name;
    fs::create_directories(folder);
    fs::permissions(folder, fs::perms::owner_all);
    const std::string host = access->access.value("host", "127.0.0.1");
    const std::string port = std::to_string(access->access.value("port", 22));
    util::write_private_file(folder / "client_key", access->client_key);
    util::write_private_file(folder / "known_hosts", "[" + host + "]:" + port + " " +
                                                         access->access.value("host_key", "") +
                                                         "\n");
    std::vector<std::string> words = {"ssh",
                                      "-F",
                                      "/dev/null",
                                      "-i",
                                      (folder / "client_key").string(),
                                      "-p",
                                      port,
                                      "-o",
                                      "UserKnownHostsFile=" + (folder / "known_hosts").string(),
                                      "-o",
                                      "StrictHostKeyChecking=yes",
                                      "-o",
                                      "IdentitiesOnly=yes"};
    if (manager) {
        const ssh::Endpoint endpoint = manager->endpoint();
        util::write_private_file(folder / "manager_key", endpoint.private_key);
        util::write_private_file(folder / "manager_known_hosts",
                                 "[" + endpoint.host + "]:" + std::to_string(endpoint.port) + " " +
                                     endpoint.pinned_host_key + "\n");
        words.push_back("-o");
        words.push_back("ProxyCommand=ssh -F /dev/null -i " + (folder / "manager_key").string() +
                        " -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o "
                        "UserKnownHostsFile=" +
                        (folder / "manager_known_hosts").string() + " -p " +
                        std::to_string(endpoint.port) + " " + endpoint.user + "@" + endpoint.host +
                        " -W " + host + ":" + port);
    }
    words.push_back(access->access.value("user", "worker") + "@" + host);
    words.insert(words.end(), command.begin(), command.end());
    std::vector<char*> argv;
    for (auto& word : words) {
        argv.push_back(word.data());
    }
    argv.push_back(nullptr);
    ::execvp("ssh", argv.data());
    throw InfrastructureError(std::string("cannot run ssh: ") + std::strerror(errno),
                              "install openssh-client");
}

} // namespace

void add_shell_command(CLI::App& parent, CommandAction& action) {
    auto name = std::make_shared<std::string>();
    auto command = std::make_shared<std::vector<std::string>>();
    CLI::App* shell = parent.add_subcommand(
        "shell", "Open a shell in a worker kept by 'contractor build --keep-worker' (on this "
                 "host or in the manager VM)");
    shell->add_option("worker", *name, "The worker's name, as the build printed it")->required();
    shell->add_option("command", *command, "A command to run instead of a login shell (after --)");
    shell->callback([name, command, &action] {
        action = [name, command](Context& context) {
            return open_shell(*name, *command, context);
        };
    });
}

} // namespace contractor::cli

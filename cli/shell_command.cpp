#include "cli/command.hpp"
#include "image/cache.hpp"
#include "util/error.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <unistd.h>

namespace contractor::cli {
namespace fs = std::filesystem;

namespace {

// Replaces contractor with OpenSSH logged into the kept worker: a real terminal, the pinned
// host key, the worker's per-boot client key.
int open_shell(const std::string& name, const std::vector<std::string>& command) {
    const fs::path run =
        image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "runs" / name;
    std::ifstream in(run / "access.json");
    if (!in) {
        throw UsageError("there is no kept worker called '" + name + "'",
                         "'contractor build --keep-worker' keeps a failed worker and prints its "
                         "name");
    }
    const auto access = nlohmann::json::parse(in, nullptr, false);
    if (access.is_discarded()) {
        throw InfrastructureError("the access file of " + name + " is damaged");
    }
    const std::string host = access.value("host", "127.0.0.1");
    const std::string port = std::to_string(access.value("port", 22));
    const fs::path known_hosts = run / "known_hosts";
    std::ofstream(known_hosts) << "[" << host << "]:" << port << " " << access.value("host_key", "")
                               << "\n";
    const std::string user_at_host = access.value("user", "worker") + "@" + host;
    const std::string key = (run / "client_key").string();
    const std::string known = "UserKnownHostsFile=" + known_hosts.string();
    std::vector<const char*> argv = {"ssh",
                                     "-i",
                                     key.c_str(),
                                     "-p",
                                     port.c_str(),
                                     "-o",
                                     known.c_str(),
                                     "-o",
                                     "StrictHostKeyChecking=yes",
                                     "-o",
                                     "IdentitiesOnly=yes",
                                     user_at_host.c_str()};
    for (const auto& word : command) {
        argv.push_back(word.c_str());
    }
    argv.push_back(nullptr);
    ::execvp("ssh", const_cast<char* const*>(argv.data()));
    throw InfrastructureError(std::string("cannot run ssh: ") + std::strerror(errno),
                              "install openssh-client");
}

} // namespace

void add_shell_command(CLI::App& parent, CommandAction& action) {
    auto name = std::make_shared<std::string>();
    auto command = std::make_shared<std::vector<std::string>>();
    CLI::App* shell = parent.add_subcommand(
        "shell", "Open a shell in a worker kept by 'contractor build --keep-worker'");
    shell->add_option("worker", *name, "The worker's name, as the build printed it")->required();
    shell->add_option("command", *command, "A command to run instead of a login shell (after --)");
    shell->callback([name, command, &action] {
        action = [name, command](Context&) {
            return open_shell(*name, *command);
        };
    });
}

} // namespace contractor::cli

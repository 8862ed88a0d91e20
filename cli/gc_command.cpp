#include "cli/command.hpp"
#include "cli/manager_connection.hpp"
#include "image/cache.hpp"
#include "spec/spec.hpp"
#include "virt/libvirt.hpp"
#include "vm/leftovers.hpp"

#include <ostream>

namespace contractor::cli {

namespace {

// The running manager VM's leftovers: workers of killed jobs inside it and workers kept there.
// A manager that is not running is left alone (it removes its stopped workers when it starts).
std::size_t collect_in_manager(Context& context) {
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    managervm::ManagerVm manager = open_manager(config, "", "");
    if (!manager.created() || !manager.running()) {
        return 0;
    }
    ManagerLink link = connect_manager(manager, context.err);
    std::string output;
    if (link.chain.last().run(link.agent + " gc all", output) != 0) {
        throw InfrastructureError("the manager could not remove its leftovers: " + output);
    }
    std::size_t removed = 0;
    std::size_t start = 0;
    while (start < output.size()) {
        const auto end = output.find('\n', start);
        const std::string line = output.substr(start, end - start);
        if (!line.empty()) {
            context.err << "contractor: inside the manager: " << line << "\n";
            ++removed;
        }
        start = end == std::string::npos ? output.size() : end + 1;
    }
    return removed;
}

} // namespace

void add_gc_command(CLI::App& parent, CommandAction& action) {
    CLI::App* gc = parent.add_subcommand(
        "gc", "Remove worker VMs and files left by killed builds and kept workers, on this host "
              "and in the running manager VM");
    gc->callback([&action] {
        action = [](Context& context) {
            virt::Connection connection(virt::default_uri());
            const auto runs =
                image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "runs";
            const auto removed =
                vm::remove_leftovers(connection, runs, vm::Leftovers::orphaned_and_kept);
            for (const auto& line : removed) {
                context.err << "contractor: removed " << line << "\n";
            }
            // Credentials `contractor shell` wrote for kept workers, gone with them.
            std::error_code ignored;
            std::filesystem::remove_all(
                image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "shell",
                ignored);
            const std::size_t in_manager = collect_in_manager(context);
            context.err << "contractor: "
                        << (removed.empty() && in_manager == 0 ? "nothing to remove" : "done")
                        << std::endl;
            return 0;
        };
    });
}

} // namespace contractor::cli

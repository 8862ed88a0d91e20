#include "cli/command.hpp"
#include "image/cache.hpp"
#include "virt/libvirt.hpp"
#include "vm/leftovers.hpp"

#include <ostream>

namespace contractor::cli {

void add_gc_command(CLI::App& parent, CommandAction& action) {
    CLI::App* gc = parent.add_subcommand(
        "gc", "Remove worker VMs and files left by killed builds and kept workers");
    gc->callback([&action] {
        action = [](Context& context) {
            virt::Connection connection(virt::default_uri());
            const auto runs =
                image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "runs";
            const auto removed = vm::remove_leftovers(connection, runs);
            for (const auto& line : removed) {
                context.err << "contractor: removed " << line << "\n";
            }
            context.err << "contractor: " << (removed.empty() ? "nothing to remove" : "done")
                        << std::endl;
            return 0;
        };
    });
}

} // namespace contractor::cli

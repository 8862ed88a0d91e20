#include "cli/command.hpp"
#include "spec/config.hpp"
#include "spec/effective.hpp"
#include "spec/spec.hpp"

#include <filesystem>
#include <memory>
#include <optional>
#include <ostream>

namespace contractor::cli {
namespace {

struct DumpOptions {
    std::string spec_path;
    bool effective = false;
    // --image, --source, --workspace, as `contractor build` takes them.
    std::optional<std::string> image;
    std::optional<std::string> source;
    std::optional<std::string> workspace;
};

void print_json(std::ostream& out, const nlohmann::ordered_json& value) {
    out << value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

int run_dump(const DumpOptions& options, Context& context) {
    const spec::BuildSpec spec = spec::load_spec(options.spec_path);
    if (!options.effective) {
        print_json(context.out, spec.document.value);
        return 0;
    }
    const spec::UserConfig config = spec::load_user_config(context.config_location);
    const spec::PathOverrides overrides{options.image, options.source, options.workspace,
                                        std::filesystem::current_path()};
    print_json(context.out, spec::to_json(spec::resolve(spec, config, overrides)));
    return 0;
}

} // namespace

void add_dump_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<DumpOptions>();
    CLI::App* dump = parent.add_subcommand(
        "dump", "Check a build spec and print it as JSON (exactly what yaml.safe_load reads)");
    dump->add_option("SPEC", options->spec_path, "the build spec (YAML)")->required();
    CLI::Option* effective = dump->add_flag(
        "--effective", options->effective,
        "print what a build would use: defaults filled in, paths absolute, limits in "
        "base units, the network policy with each rule's origin");
    dump->add_option("--source", options->source, "with --effective: as 'contractor build'")
        ->needs(effective);
    dump->add_option("--workspace", options->workspace, "with --effective: as 'contractor build'")
        ->needs(effective);
    dump->add_option("--image", options->image, "with --effective: as 'contractor build'")
        ->needs(effective);
    dump->callback([options, &action] {
        action = [options](Context& context) {
            return run_dump(*options, context);
        };
    });
}

} // namespace contractor::cli

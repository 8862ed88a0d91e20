#include "cli/command.hpp"
#include "cli/manual.hpp"
#include "util/error.hpp"

#include <memory>

#ifndef CONTRACTOR_VERSION
#define CONTRACTOR_VERSION "unknown"
#endif

namespace contractor::cli {
namespace {

struct HelpOptions {
    std::vector<std::string> verb;
    bool man = false;
    bool bash_completion = false;
};

int print_help(const CLI::App& root, const HelpOptions& options, Context& context) {
    if (options.man) {
        context.out << man_page(root, CONTRACTOR_VERSION);
        return 0;
    }
    if (options.bash_completion) {
        context.out << bash_completion(root);
        return 0;
    }
    const CLI::App* verb = find_verb(root, options.verb);
    if (verb == nullptr) {
        std::string path;
        for (const auto& word : options.verb) {
            path += (path.empty() ? "" : " ") + word;
        }
        throw UsageError("no command 'contractor " + path + "'", "see 'contractor help'");
    }
    // As `contractor VERB --help` prints it: the usage line names the whole command.
    std::string parent;
    for (const auto* app = verb->get_parent(); app != nullptr; app = app->get_parent()) {
        parent = app->get_name() + (parent.empty() ? "" : " " + parent);
    }
    // (App::help() of the root would print the help of the verb parsed: `help` itself.)
    context.out << (verb == &root ? root.get_formatter()->make_help(&root, root.get_name(),
                                                                    CLI::AppFormatMode::Normal)
                                  : verb->help(parent));
    return 0;
}

} // namespace

void add_help_command(CLI::App& parent, CommandAction& action) {
    auto options = std::make_shared<HelpOptions>();
    CLI::App* help = parent.add_subcommand(
        "help",
        "Print the help of the program or of one verb (e.g. 'contractor help image build')");
    help->add_option("verb", options->verb, "The verb, and its own verb if it has them");
    // The build makes the man page and the completion script with these (cli/CMakeLists.txt).
    help->add_flag("--man", options->man, "Print the man page contractor(1) in roff")->group("");
    help->add_flag("--bash-completion", options->bash_completion,
                   "Print the bash completion script")
        ->group("");
    const CLI::App* root = &parent;
    help->callback([options, root, &action] {
        action = [options, root](Context& context) {
            return print_help(*root, *options, context);
        };
    });
}

} // namespace contractor::cli

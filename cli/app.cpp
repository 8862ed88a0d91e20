#include "cli/app.hpp"

#include "cli/command.hpp"
#include "cli/manual.hpp"
#include "util/cancel.hpp"
#include "util/error.hpp"
#include "util/escape.hpp"
#include "util/text.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#ifndef CONTRACTOR_VERSION
#define CONTRACTOR_VERSION "unknown"
#endif

namespace contractor::cli {
namespace {

std::optional<std::string> environment(const char* name) {
    if (const char* value = std::getenv(name)) {
        return std::string(value);
    }
    return std::nullopt;
}

// The first word that is neither an option nor an option's value: the command the user meant.
std::optional<std::string> command_word(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--config") {
            ++i;
        } else if (!arg.starts_with("-")) {
            return std::string(arg);
        }
    }
    return std::nullopt;
}

// CLI11 reports an unknown command as a missing one; name it and suggest the closest.
void check_command_word(const CLI::App& app, int argc, char** argv) {
    const auto word = command_word(argc, argv);
    if (!word) {
        return;
    }
    std::vector<std::string> names;
    for (const auto* command : app.get_subcommands({})) {
        names.push_back(command->get_name());
    }
    if (std::find(names.begin(), names.end(), *word) != names.end()) {
        return;
    }
    std::vector<std::string_view> candidates(names.begin(), names.end());
    std::string message = "unknown command " + util::quoted(*word);
    if (const auto suggestion = util::closest_match(*word, candidates)) {
        message += " (did you mean '" + *suggestion + "'?)";
    }
    throw UsageError(message, "see 'contractor --help'");
}

// Messages carry text from the worker and the manager (file names, console lines): control
// characters are escaped, the newlines of a multi-line message (console lines) kept.
void print_error(std::ostream& err, const std::string& what, const std::string& hint) {
    err << "contractor: error: " << util::escape_message(what, true);
    if (!hint.empty()) {
        err << " (" << util::escape_message(hint, true) << ")";
    }
    err << std::endl;
}

} // namespace

int run(int argc, char** argv, Context& context) {
    CLI::App app{"Contractor builds software you cannot fully trust inside a disposable VM, "
                 "under hard limits.",
                 "contractor"};
    app.set_version_flag("--version", CONTRACTOR_VERSION);
    app.require_subcommand(1);
    std::string config_file;
    app.add_option("--config", config_file,
                   "the user config (default: $XDG_CONFIG_HOME/contractor/config.yaml)")
        ->check(CLI::ExistingFile);

    CommandAction action;
    add_dump_command(app, action);
    add_image_command(app, action);
    add_build_command(app, action);
    add_gc_command(app, action);
    add_shell_command(app, action);
    add_manager_command(app, action);
    add_cache_command(app, action);
    add_gitlab_executor_command(app, action);
    add_help_command(app, action);
    // Set last, so that the verbs do not inherit it.
    app.footer(exit_codes_text());

    try {
        check_command_word(app, argc, argv);
        app.parse(argc, argv);
    } catch (const UsageError& error) {
        print_error(context.err, error.what(), error.hint());
        return to_int(error.exit_code());
    } catch (const CLI::ParseError& error) {
        if (error.get_exit_code() == 0) {
            return app.exit(error, context.out, context.err);
        }
        print_error(context.err, error.what(), "see 'contractor --help'");
        return to_int(ExitCode::usage);
    }
    if (!config_file.empty()) {
        context.config_location.explicit_file = config_file;
    }
    try {
        return action(context);
    } catch (const Interrupted& interrupted) {
        context.err << "contractor: " << interrupted.what() << "; cleaned up" << std::endl;
        return 128 + interrupted.signal();
    } catch (const Error& error) {
        print_error(context.err, error.what(), error.hint());
        return to_int(error.exit_code());
    } catch (const std::filesystem::filesystem_error& error) {
        // A full disk, a permission, a folder that vanished: the machine's, not a bug.
        print_error(context.err, error.what(),
                    "check the free space and permissions of the path named");
        return to_int(ExitCode::infrastructure);
    } catch (const std::bad_alloc&) {
        print_error(context.err, "out of memory", "free memory on this machine and try again");
        return to_int(ExitCode::infrastructure);
    } catch (const std::exception& error) {
        print_error(context.err, std::string("unexpected failure: ") + error.what(),
                    "please report this as a bug");
        return to_int(ExitCode::infrastructure);
    }
}

int main(int argc, char** argv) {
    util::install_cancel_handlers();
    Context context{
        {environment("XDG_CONFIG_HOME"), environment("HOME"), std::nullopt}, std::cout, std::cerr};
    return run(argc, argv, context);
}

} // namespace contractor::cli

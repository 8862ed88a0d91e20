#pragma once

#include "cli/context.hpp"

#include <CLI/CLI.hpp>

#include <functional>

namespace contractor::cli {

// The command CLI11 selected, to run once parsing succeeded.
using CommandAction = std::function<int(Context&)>;

// Each verb registers its options on `parent` and, when chosen, stores its action in `action`.
void add_dump_command(CLI::App& parent, CommandAction& action);
void add_image_command(CLI::App& parent, CommandAction& action);
void add_build_command(CLI::App& parent, CommandAction& action);
void add_gc_command(CLI::App& parent, CommandAction& action);
void add_shell_command(CLI::App& parent, CommandAction& action);
void add_manager_command(CLI::App& parent, CommandAction& action);
void add_cache_command(CLI::App& parent, CommandAction& action);
// `gitlab-executor config|prepare|run|cleanup`: the GitLab Runner custom executor driver.
void add_gitlab_executor_command(CLI::App& parent, CommandAction& action);
// `help [VERB...]`: `parent` is the whole program, whose definition it prints.
void add_help_command(CLI::App& parent, CommandAction& action);

} // namespace contractor::cli

#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace contractor::cli {

// contractor's documentation made from the CLI11 definition of its commands, the one source of
// `--help`, `contractor help VERB`, the man page and the shell completion, so that none of them
// can drift from what the program accepts.

// The subcommand named by `path` ("image", "build" ...) below `root`; nullptr when there is none.
const CLI::App* find_verb(const CLI::App& root, const std::vector<std::string>& path);

// contractor(1) in roff: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, a section per verb (with its
// options and its own verbs), EXIT STATUS, ENVIRONMENT, FILES, SEE ALSO.
std::string man_page(const CLI::App& root, const std::string& version);

// A bash completion script: verbs, each verb's options, files for the rest.
std::string bash_completion(const CLI::App& root);

// The exit codes, one per line, for the end of `contractor --help` (the man page lists the same).
std::string exit_codes_text();

} // namespace contractor::cli

#pragma once

#include "cli/context.hpp"

namespace contractor::cli {

// Parses the command line and runs the chosen command. Every error ends here: it is printed as
// one `contractor: error:` line and turned into the documented exit code.
int run(int argc, char** argv, Context& context);

// The process entry point: builds the context from the real environment and calls run().
int main(int argc, char** argv);

} // namespace contractor::cli

#pragma once

#include "cli/app.hpp"
#include "cli/context.hpp"

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace contractor::test {

// What one `contractor ...` run printed and returned.
struct Outcome {
    int exit_code;
    std::string out;
    std::string err;
};

// Runs the CLI in-process with `arguments` (without the program name). The user config is
// looked for under `config_home`, never in the real home directory.
inline Outcome run(const std::vector<std::string>& arguments,
                   const std::filesystem::path& config_home) {
    std::vector<std::string> storage = {"contractor"};
    storage.insert(storage.end(), arguments.begin(), arguments.end());
    std::vector<char*> argv;
    for (auto& argument : storage) {
        argv.push_back(argument.data());
    }
    argv.push_back(nullptr);
    std::ostringstream out;
    std::ostringstream err;
    cli::Context context{{config_home.string(), std::nullopt, std::nullopt}, out, err};
    const int code = cli::run(static_cast<int>(storage.size()), argv.data(), context);
    return {code, out.str(), err.str()};
}

} // namespace contractor::test

#pragma once

#include "cli/manager_session.hpp"
#include "spec/effective.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <ostream>
#include <string>

namespace contractor::cli {

// Everything the summary and the JSON report say about one build.
struct BuildRecord {
    const spec::EffectiveSpec& effective;
    const BuildOutcome& outcome;
    std::string topology;
    std::string accel;
    std::filesystem::path log_file;
    double total_seconds = 0;
    bool network_audit = false; // --network-audit: suggest a section for every attempt
};

// The --report JSON: result, exit_code, limit, phases, usage, policy, paths, rejected entries.
nlohmann::ordered_json build_report(const BuildRecord& record);

// A report as written to the --report file: indented JSON and a newline. Never throws for
// bad text: a string that is not UTF-8 (names from the worker are bytes) has U+FFFD in place
// of each bad byte rather than making nlohmann throw type_error 316.
std::string report_text(const nlohmann::ordered_json& report);

// The summary on stderr at the end of a build, for people.
void print_summary(std::ostream& err, const BuildRecord& record);

// The effective limits and network policy, printed before anything runs.
void print_plan(std::ostream& err, const spec::EffectiveSpec& effective);

} // namespace contractor::cli

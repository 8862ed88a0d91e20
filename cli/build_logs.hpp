#pragma once

#include "spec/config.hpp"

#include <chrono>
#include <filesystem>
#include <vector>

namespace contractor::cli {

// Where build logs go: $XDG_STATE_HOME/contractor/logs (~/.local/state/contractor/logs).
std::filesystem::path log_folder();

// A new build log's path in `folder`: SPEC-DATE-TIME-RANDOM.log (the folder is created).
std::filesystem::path new_log_file(const std::filesystem::path& folder,
                                   const std::filesystem::path& spec_file);

// Removes the build logs (*.log) in `folder` beyond the newest `retention.keep` and those
// older than `retention.max_age_seconds` at `now`, never `current`. Returns what it removed.
std::vector<std::filesystem::path>
prune_logs(const std::filesystem::path& folder, const spec::LogRetention& retention,
           const std::filesystem::path& current,
           std::filesystem::file_time_type now = std::filesystem::file_time_type::clock::now());

} // namespace contractor::cli

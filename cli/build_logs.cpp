#include "cli/build_logs.hpp"

#include "util/text.hpp"

#include <algorithm>
#include <cstdlib>
#include <ctime>

namespace contractor::cli {
namespace fs = std::filesystem;

fs::path log_folder() {
    fs::path state;
    if (const char* xdg = std::getenv("XDG_STATE_HOME"); xdg != nullptr && *xdg != '\0') {
        state = xdg;
    } else if (const char* home = std::getenv("HOME"); home != nullptr) {
        state = fs::path(home) / ".local" / "state";
    } else {
        state = fs::temp_directory_path();
    }
    return state / "contractor" / "logs";
}

fs::path new_log_file(const fs::path& folder, const fs::path& spec_file) {
    fs::create_directories(folder);
    char stamp[32];
    const std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &local);
    return folder / (spec_file.stem().string() + "-" + stamp + "-" + util::random_hex(3) + ".log");
}

std::vector<fs::path> prune_logs(const fs::path& folder, const spec::LogRetention& retention,
                                 const fs::path& current, fs::file_time_type now) {
    struct Log {
        fs::path path;
        fs::file_time_type written;
    };
    std::vector<Log> logs;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(folder, error)) {
        if (entry.path().extension() == ".log" && entry.is_regular_file(error) &&
            entry.path() != current) {
            logs.push_back({entry.path(), entry.last_write_time(error)});
        }
    }
    std::sort(logs.begin(), logs.end(),
              [](const Log& a, const Log& b) { return a.written > b.written; });
    const auto oldest = now - std::chrono::seconds(retention.max_age_seconds);
    std::vector<fs::path> removed;
    // The current log counts as the newest one kept.
    const std::size_t keep_others =
        retention.keep > 0 ? static_cast<std::size_t>(retention.keep - 1) : 0;
    for (std::size_t index = 0; index < logs.size(); ++index) {
        if (index >= keep_others || logs[index].written < oldest) {
            if (fs::remove(logs[index].path, error)) {
                removed.push_back(logs[index].path);
            }
        }
    }
    return removed;
}

} // namespace contractor::cli

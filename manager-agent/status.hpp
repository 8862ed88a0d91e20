#pragma once

#include <nlohmann/json.hpp>

// `contractor-manager status`: what `contractor manager status` shows about the inside of the
// manager (or of this host, in the direct topology).
namespace contractor::manager {

// {"uptime_seconds", "load", "memory": {total, available}, "disk": {total, free} (the
// filesystem holding the image cache), "workers": [{name, running, cpu_seconds}],
// "images": [{name, digest, bytes}], "run_folders": [NAME]}.
nlohmann::ordered_json status_report();

} // namespace contractor::manager

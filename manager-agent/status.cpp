#include "manager-agent/status.hpp"

#include "image/cache.hpp"
#include "virt/libvirt.hpp"
#include "vm/leftovers.hpp"

#include <cstdlib>
#include <fstream>
#include <sys/statvfs.h>

namespace contractor::manager {
namespace {

double first_number(const char* file) {
    std::ifstream in(file);
    double value = 0;
    in >> value;
    return value;
}

// MemTotal and MemAvailable from /proc/meminfo, in bytes.
nlohmann::ordered_json memory() {
    std::ifstream in("/proc/meminfo");
    std::string key;
    std::uint64_t kib = 0;
    std::string unit;
    nlohmann::ordered_json out = {{"total", 0}, {"available", 0}};
    while (in >> key >> kib >> unit) {
        if (key == "MemTotal:") {
            out["total"] = kib * 1024;
        } else if (key == "MemAvailable:") {
            out["available"] = kib * 1024;
        }
    }
    return out;
}

nlohmann::ordered_json disk(const std::filesystem::path& folder) {
    struct statvfs info {};
    std::filesystem::create_directories(folder);
    if (::statvfs(folder.c_str(), &info) != 0) {
        return nullptr;
    }
    return {{"total", static_cast<std::uint64_t>(info.f_blocks) * info.f_frsize},
            {"free", static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize}};
}

// The loopback port forwarded to the worker's sshd (domain_xml.cpp writes it), or null.
nlohmann::ordered_json forwarded_port(const std::string& xml) {
    const std::string marker = "hostfwd=tcp:127.0.0.1:";
    const auto at = xml.find(marker);
    if (at == std::string::npos) {
        return nullptr;
    }
    return std::atoi(xml.c_str() + at + marker.size());
}

nlohmann::ordered_json workers() {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    virt::Connection libvirt(virt::default_uri());
    const auto runs =
        image::ImageCache(image::ImageCache::default_root()).root().parent_path() / "runs";
    for (const auto& worker : vm::list_workers(libvirt, runs)) {
        const auto domain = libvirt.find(worker.name);
        out.push_back({{"name", worker.name},
                       {"running", worker.running},
                       {"cpu_seconds",
                        worker.cpu_seconds ? nlohmann::ordered_json(*worker.cpu_seconds) : nullptr},
                       {"ssh_port", domain ? forwarded_port(domain->xml()) : nullptr},
                       {"lease", worker.lease}});
    }
    return out;
}

} // namespace

nlohmann::ordered_json status_report() {
    const image::ImageCache cache(image::ImageCache::default_root());
    nlohmann::ordered_json images = nlohmann::ordered_json::array();
    for (const auto& image : cache.list()) {
        images.push_back(
            {{"name", image.name}, {"digest", image.digest}, {"bytes", image.size_on_disk()}});
    }
    // Worker run folders (overlay, seed, console): one per worker, removed with it.
    nlohmann::ordered_json runs = nlohmann::ordered_json::array();
    std::error_code error;
    for (const auto& entry :
         std::filesystem::directory_iterator(cache.root().parent_path() / "runs", error)) {
        // Only workers' folders: the slot locks (.slots) and a keeper's request file
        // (.ready-request-*) are not workers.
        const auto name = entry.path().filename().string();
        if (name.rfind("contractor-", 0) == 0) {
            runs.push_back(name);
        }
    }
    return {{"uptime_seconds", first_number("/proc/uptime")},
            {"load", first_number("/proc/loadavg")},
            {"memory", memory()},
            {"disk", disk(cache.root())},
            {"workers", workers()},
            {"images", images},
            {"run_folders", runs}};
}

} // namespace contractor::manager

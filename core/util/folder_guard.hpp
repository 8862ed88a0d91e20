#pragma once

#include <filesystem>
#include <system_error>
#include <utility>

namespace contractor::util {

// Removes a folder and everything in it when it goes out of scope, unless released: a
// staging folder on the way to being committed, a half-created manager.
class FolderGuard {
public:
    explicit FolderGuard(std::filesystem::path path) : path_(std::move(path)) {}
    ~FolderGuard() {
        if (!path_.empty()) {
            std::error_code error;
            std::filesystem::remove_all(path_, error);
        }
    }
    FolderGuard(const FolderGuard&) = delete;
    FolderGuard& operator=(const FolderGuard&) = delete;
    // Keeps the folder.
    void release() { path_.clear(); }

private:
    std::filesystem::path path_;
};

} // namespace contractor::util

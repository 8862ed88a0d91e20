#pragma once

#include "util/error.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
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

    // A new folder only its owner can enter (0700) in the temporary directory, named
    // PREFIX-XXXXXX: for sockets and credentials that live as long as one operation.
    static FolderGuard make_temporary(const std::string& prefix) {
        const std::filesystem::path base = std::filesystem::temp_directory_path();
        std::string pattern = (base / (prefix + "-XXXXXX")).string();
        if (::mkdtemp(pattern.data()) == nullptr) {
            throw InfrastructureError("cannot create a folder in " + base.string() + ": " +
                                      std::strerror(errno));
        }
        return FolderGuard(pattern);
    }

    const std::filesystem::path& path() const { return path_; }
    // Keeps the folder.
    void release() { path_.clear(); }

private:
    std::filesystem::path path_;
};

} // namespace contractor::util

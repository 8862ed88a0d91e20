#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

namespace contractor::image {

// Incremental SHA-256 (OpenSSL's EVP), for content-addressed cache keys.
class Sha256 {
public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(std::string_view data);
    // Adds a file's bytes; throws InfrastructureError when it cannot be read.
    void update_file(const std::filesystem::path& file);
    // The digest in lower-case hex; the object cannot be updated afterwards.
    std::string hex_digest();

private:
    struct Context;
    std::unique_ptr<Context> context_;
};

} // namespace contractor::image

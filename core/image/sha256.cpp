#include "image/sha256.hpp"

#include "util/error.hpp"

#include <cstdio>
#include <fstream>
#include <openssl/evp.h>
#include <vector>

namespace contractor::image {

struct Sha256::Context {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context{EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free};
};

Sha256::Sha256() : context_(std::make_unique<Context>()) {
    if (!context_->context ||
        EVP_DigestInit_ex(context_->context.get(), EVP_sha256(), nullptr) != 1) {
        throw InfrastructureError("OpenSSL could not start a SHA-256 digest");
    }
}

Sha256::~Sha256() = default;

void Sha256::update(std::string_view data) {
    EVP_DigestUpdate(context_->context.get(), data.data(), data.size());
}

void Sha256::update_file(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        throw InfrastructureError("cannot read " + file.string());
    }
    std::vector<char> buffer(1 << 20);
    while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
        update(std::string_view(buffer.data(), static_cast<std::size_t>(in.gcount())));
    }
}

std::string Sha256::hex_digest() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_->context.get(), digest, &length);
    std::string out;
    char byte[3];
    for (unsigned int i = 0; i < length; ++i) {
        std::snprintf(byte, sizeof byte, "%02x", digest[i]);
        out += byte;
    }
    return out;
}

} // namespace contractor::image

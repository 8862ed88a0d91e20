#include "ssh/keys.hpp"

#include "ssh/handles.hpp"
#include "util/error.hpp"

namespace contractor::ssh {

KeyPair generate_key_pair() {
    ssh_key raw = nullptr;
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &raw) != SSH_OK) {
        throw InfrastructureError("libssh could not generate an Ed25519 key");
    }
    const KeyPtr key(raw);
    char* private_text = nullptr;
    if (ssh_pki_export_privkey_base64(key.get(), nullptr, nullptr, nullptr, &private_text) !=
        SSH_OK) {
        throw InfrastructureError("libssh could not export a private key");
    }
    const StringPtr private_owner(private_text);
    char* public_text = nullptr;
    if (ssh_pki_export_pubkey_base64(key.get(), &public_text) != SSH_OK) {
        throw InfrastructureError("libssh could not export a public key");
    }
    const StringPtr public_owner(public_text);
    return {private_text, std::string("ssh-ed25519 ") + public_text};
}

} // namespace contractor::ssh

namespace contractor::ssh {

std::string fingerprint(const std::string& public_key) {
    const auto space = public_key.find(' ');
    const std::string blob = space == std::string::npos ? public_key : public_key.substr(space + 1);
    ssh_key raw = nullptr;
    if (ssh_pki_import_pubkey_base64(blob.substr(0, blob.find(' ')).c_str(), SSH_KEYTYPE_ED25519,
                                     &raw) != SSH_OK) {
        return "(unreadable key)";
    }
    const KeyPtr key(raw);
    unsigned char* hash = nullptr;
    size_t length = 0;
    if (ssh_get_publickey_hash(key.get(), SSH_PUBLICKEY_HASH_SHA256, &hash, &length) != 0) {
        return "(unreadable key)";
    }
    char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, length);
    ssh_clean_pubkey_hash(&hash);
    const StringPtr owner(text);
    return text != nullptr ? text : "(unreadable key)";
}

} // namespace contractor::ssh

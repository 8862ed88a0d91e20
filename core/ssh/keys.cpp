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

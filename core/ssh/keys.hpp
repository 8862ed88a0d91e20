#pragma once

#include <string>

namespace contractor::ssh {

// An Ed25519 key pair made for one purpose and then forgotten (a worker's per-boot host key,
// a per-boot client key). The private key is in OpenSSH format, as sshd and libssh read it.
struct KeyPair {
    std::string private_key; // "-----BEGIN OPENSSH PRIVATE KEY-----..."
    std::string public_key;  // "ssh-ed25519 AAAA..."
};

// A fresh key pair from libssh's generator. Throws InfrastructureError if libssh fails.
KeyPair generate_key_pair();

// "SHA256:..." as ssh-keygen -l prints it, for an "ssh-ed25519 AAAA..." public key.
std::string fingerprint(const std::string& public_key);

} // namespace contractor::ssh

// SSH keys: ed25519 key pairs generated in the daemon (libssh), and
// validation of user-supplied OpenSSH public key lines. Thread-safe.
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

struct SshKeyPair {
  std::string private_openssh;  // "-----BEGIN OPENSSH PRIVATE KEY-----\n..." (unencrypted)
  std::string public_line;      // "ssh-ed25519 AAAA... comment"
};

Result<SshKeyPair> generateEd25519(const std::string& comment);

// Accepts one OpenSSH public key line ("type base64 [comment]", no options,
// no newlines, key types ed25519 / ecdsa / rsa >= 2048 bits / sk-*), checks
// that the base64 blob decodes to a key of that type, and returns the
// normalised line. kInvalid with a message a user can act on otherwise.
Result<std::string> parsePublicKeyLine(const std::string& line);

// "SHA256:..." as `ssh-keygen -lf` prints it, for a valid public key line.
Result<std::string> publicKeyFingerprint(const std::string& line);

}  // namespace sandman

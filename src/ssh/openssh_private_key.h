// OpenSSH private key files: re-lays an unencrypted "openssh-key-v1" key the
// way ssh-keygen writes it (private section padded to 8 bytes, 70-column
// base64), because some readers (AsyncSSH 2.10) reject other paddings. Pure
// functions; thread-safe.
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

// `pem` is an unencrypted OpenSSH private key file ("-----BEGIN OPENSSH
// PRIVATE KEY-----" ...); returns the same key with the private section
// padded to the 8-byte block of cipher "none", as ssh-keygen writes it.
// kInvalid when `pem` is not such a file.
Result<std::string> canonicalOpenSshPrivateKey(const std::string& pem);

}  // namespace sandman

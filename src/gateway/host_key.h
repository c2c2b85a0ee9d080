// The gateway's own host key: an ed25519 key generated once at host_key_path
// (mode 0600) and reused on every start, so users never see a
// host-key-changed warning after a restart. Thread-safe (no shared state).
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

// Loads the private key at `path`, creating it (and not overwriting anything)
// when the file does not exist. Returns the public key line
// "ssh-ed25519 AAAA...".
Result<std::string> loadOrCreateHostKey(const std::string& path);

}  // namespace sandman

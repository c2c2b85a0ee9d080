// Handshake probe: "ready" means the container's sshd completes an SSH key
// exchange and presents the host key Sandman generated for it. Thread-safe.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

// One attempt: connects to host:port, runs the key exchange, and compares the
// server's host key with expected_host_key ("ssh-ed25519 AAAA..."; the
// comment, if any, is ignored). kUnavailable when nothing answers or the
// handshake does not complete within timeout; kConflict when the host key
// differs (never treat that as ready).
Status probeSshHandshake(const std::string& host, int port, const std::string& expected_host_key,
                         Millis timeout);

}  // namespace sandman

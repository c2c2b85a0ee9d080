// libssh key objects from OpenSSH public key lines, shared by the gateway's
// client-key check and its upstream host-key pinning. Thread-safe.
#pragma once

#include <libssh/libssh.h>

#include <string>

namespace sandman {

// "ssh-ed25519 AAAA... [comment]" -> a new ssh_key (free with ssh_key_free);
// nullptr when malformed.
ssh_key importPublicKeyLine(const std::string& line);

}  // namespace sandman

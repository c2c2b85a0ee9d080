// KEXINIT probe: the cheap readiness check run in a tight loop while a
// session starts. It exchanges version banners with the server and waits for
// its first binary packet, SSH_MSG_KEXINIT: proof that sshd itself (not just
// Docker's port proxy) is answering the SSH handshake. About 1 ms, against
// ~25 ms for a full key exchange. Thread-safe.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

// ok when host:port answers with an "SSH-2.0-" banner followed by a KEXINIT
// packet within timeout; kUnavailable otherwise. The server's reply never
// reaches anything but this function's fixed-size buffer.
Status probeSshKexInit(const std::string& host, int port, Millis timeout);

// The parsing half, exposed for tests and fuzzing: given the bytes received
// so far, returns 1 when they hold a banner line and a KEXINIT packet header,
// 0 when more bytes are needed, -1 when they cannot be an SSH server's answer.
int classifySshServerHello(const std::string& bytes);

}  // namespace sandman

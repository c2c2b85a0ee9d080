// Validation at the edge: user ids, TTLs, image names. Everything a request
// carries passes through here before any module sees it. Pure; thread-safe.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

// POSIX-style user name: ^[a-z_][a-z0-9_-]{0,31}$. It names the workspace
// directory and the login, so nothing else is ever accepted.
// Names of system accounts and groups of the session image (root, sshd,
// nobody, systemd-*, ...) are refused too.
Status validateUserId(const std::string& user_id);
bool isReservedUserId(const std::string& user_id);

// A TTL must be at least one second and at most max_ttl.
Status validateTtl(Millis ttl, Millis max_ttl);

// Docker image reference: [registry/]name[:tag][@digest], conservative charset.
Status validateImageName(const std::string& image);

}  // namespace sandman

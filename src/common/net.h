// Small socket helpers for checks the daemon makes on its own host.
// Thread-safe.
#pragma once

#include <string>

namespace sandman {

// True when a TCP listener could bind host:port right now.
bool isTcpPortFree(const std::string& host, int port);

// Raises this process's open-file limit to its hard limit (at most `cap`):
// the API's and the gateway's connection caps need more descriptors than the
// usual soft limit of 1024. Returns the limit now in force.
long raiseOpenFileLimit(long cap = 1 << 20);

// True for an address only this host can reach: 127.0.0.0/8, ::1, "localhost".
bool isLoopbackAddress(const std::string& host);

}  // namespace sandman

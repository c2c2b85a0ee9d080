// Small socket helpers for checks the daemon makes on its own host.
// Thread-safe.
#pragma once

#include <string>

namespace sandman {

// True when a TCP listener could bind host:port right now.
bool isTcpPortFree(const std::string& host, int port);

}  // namespace sandman

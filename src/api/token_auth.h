// API token: generated once into a 0600 file at first start (its path is
// logged, never the token) and compared in constant time. Thread-safe.
#pragma once

#include <string>

#include "common/result.h"

namespace sandman {

// Reads the token from path, or creates the file (and its directory) with a
// fresh random token when it does not exist. `created` tells which. An
// existing file must be owned by this process's user and have mode 0600 (or
// stricter): anything else is refused with the command that fixes it.
Result<std::string> loadOrCreateToken(const std::string& path, bool* created);
// Reads an existing token file (the CLI's side).
Result<std::string> readToken(const std::string& path);

// True when header is exactly "Bearer <token>"; time independent of where they differ.
bool bearerMatches(const std::string& header, const std::string& token);

}  // namespace sandman

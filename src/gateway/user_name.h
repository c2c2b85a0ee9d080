// Gateway user names: the SSH user name is the routing key, so it is checked
// against ^[a-z_][a-z0-9_-]{0,31}$ before any directory lookup. Thread-safe.
#pragma once

#include <string_view>

namespace sandman {

bool isValidGatewayUser(std::string_view user);

}  // namespace sandman

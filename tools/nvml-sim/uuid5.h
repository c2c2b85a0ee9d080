// Name-based (version 5, SHA-1) UUIDs, for the simulator's MIG device UUIDs
// ("MIG-<uuid>", as R470+ drivers print) and default GPU UUIDs. Pure functions.
#pragma once

#include <string>
#include <string_view>

namespace nvmlsim {

// RFC 4122 v5 UUID of `name` in the simulator's namespace, lower-case
// "xxxxxxxx-xxxx-5xxx-yxxx-xxxxxxxxxxxx" (y in 8..b).
std::string uuid5(std::string_view name);

}  // namespace nvmlsim

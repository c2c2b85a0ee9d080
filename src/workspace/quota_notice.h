// The words a user sees about their workspace's size: the login banner line
// for a quota this host cannot enforce, or for a workspace at its quota.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "workspace/workspace_usage.h"

namespace sandman {

// Empty when there is nothing to say (no quota; enforced and under it).
std::string quotaBanner(uint64_t quota_bytes, bool enforced, const std::optional<WorkspaceUsage>& usage);

}  // namespace sandman

// The node agent's snapshot on the wire: what `sandman agent` serves at GET
// /api/v1/agent/snapshot and the control daemon reads back. Every reading is
// carried as measured (no rounding), with each device's pids and the pod
// holding it. Versioned: a reader refuses a version it does not know.
// Pure functions; thread-safe.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "model/gpu_snapshot.h"

namespace sandman {

inline constexpr int kAgentWireVersion = 1;

struct AgentSnapshot {
  std::string node;  // the agent's --node
  TelemetrySnapshot telemetry;  // device lists, backend_ok/error, lost_gpus, taken_at
};

nlohmann::json agentSnapshotJson(const AgentSnapshot& s);
// kInvalid, naming the field, on anything malformed; devices get node = s.node
// whatever they say (an agent speaks for its own node only).
Result<AgentSnapshot> parseAgentSnapshot(const nlohmann::json& j);
Result<AgentSnapshot> parseAgentSnapshot(const std::string& body);

}  // namespace sandman

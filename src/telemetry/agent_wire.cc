#include "telemetry/agent_wire.h"

#include <chrono>
#include <exception>

namespace sandman {
namespace {

using nlohmann::json;

json opt(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

json deviceJson(const DeviceReading& d) {
  json j = {
      {"uuid", d.uuid},
      {"gpu_uuid", d.gpu_uuid},
      {"gpu_index", d.gpu_index},
      {"model", d.model_name},
      {"is_mig", d.is_mig},
      {"mig_enabled", d.mig_enabled},
      {"utilization_pct", opt(d.utilization_pct)},
      {"memory_utilization_pct", opt(d.memory_utilization_pct)},
      {"temperature_c", opt(d.temperature_c)},
      {"power_w", opt(d.power_w)},
      {"power_limit_w", opt(d.power_limit_w)},
      {"memory_used_mib", d.memory_used_mib},
      {"memory_total_mib", d.memory_total_mib},
      {"compute_processes", d.compute_processes},
      {"pids", d.pids},
      {"pod_uid", d.pod_uid.empty() ? json(nullptr) : json(d.pod_uid)},
  };
  if (d.is_mig) {
    j["profile"] = d.profile;
    j["gpu_instance_id"] = d.gpu_instance_id;
    j["compute_slices"] = d.compute_slices;
  }
  return j;
}

std::optional<double> optNum(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<double>();
}

// Throws nlohmann's type_error/out_of_range on a malformed device; the
// caller turns that into one kInvalid.
DeviceReading deviceFrom(const json& j, const std::string& node) {
  DeviceReading d;
  d.uuid = j.at("uuid").get<std::string>();
  d.gpu_uuid = j.value("gpu_uuid", d.uuid);
  d.gpu_index = j.at("gpu_index").get<int>();
  d.model_name = j.value("model", "");
  d.is_mig = j.value("is_mig", false);
  d.mig_enabled = j.value("mig_enabled", d.is_mig);
  d.utilization_pct = optNum(j, "utilization_pct");
  d.memory_utilization_pct = optNum(j, "memory_utilization_pct");
  d.temperature_c = optNum(j, "temperature_c");
  d.power_w = optNum(j, "power_w");
  d.power_limit_w = optNum(j, "power_limit_w");
  d.memory_used_mib = j.value("memory_used_mib", uint64_t{0});
  d.memory_total_mib = j.value("memory_total_mib", uint64_t{0});
  d.compute_processes = j.value("compute_processes", 0);
  if (auto it = j.find("pids"); it != j.end() && !it->is_null()) d.pids = it->get<std::vector<unsigned>>();
  if (auto it = j.find("pod_uid"); it != j.end() && !it->is_null()) d.pod_uid = it->get<std::string>();
  if (d.is_mig) {
    d.profile = j.value("profile", "");
    d.gpu_instance_id = j.value("gpu_instance_id", -1);
    d.compute_slices = j.value("compute_slices", 0);
  }
  d.node = node;
  return d;
}

}  // namespace

json agentSnapshotJson(const AgentSnapshot& s) {
  const TelemetrySnapshot& t = s.telemetry;
  json gpus = json::array();
  for (const auto& d : t.gpus) gpus.push_back(deviceJson(d));
  json instances = json::array();
  for (const auto& d : t.instances) instances.push_back(deviceJson(d));
  // Which pod holds which device, at a glance (the same as each device's pod_uid).
  json holders = json::object();
  for (const auto* list : {&t.gpus, &t.instances}) {
    for (const auto& d : *list) {
      if (!d.pod_uid.empty()) holders[d.uuid] = d.pod_uid;
    }
  }
  return {
      {"version", kAgentWireVersion},
      {"node", s.node},
      {"taken_at_ms",
       std::chrono::duration_cast<std::chrono::milliseconds>(t.taken_at.time_since_epoch()).count()},
      {"backend_ok", t.backend_ok},
      {"backend_error", t.backend_error},
      {"sample_seconds", t.sample_seconds},
      {"gpus", std::move(gpus)},
      {"instances", std::move(instances)},
      {"lost_gpus", t.lost_gpus},
      {"holders", std::move(holders)},
  };
}

Result<AgentSnapshot> parseAgentSnapshot(const json& j) {
  if (!j.is_object()) return invalid("agent snapshot: not a JSON object");
  const int version = j.value("version", 0);
  if (version != kAgentWireVersion) {
    return invalid("agent snapshot: version " + std::to_string(version) + ", this daemon reads version " +
                   std::to_string(kAgentWireVersion) + " (agent and daemon from different releases?)");
  }
  AgentSnapshot s;
  const char* field = "node";
  try {
    s.node = j.at("node").get<std::string>();
    if (s.node.empty()) return invalid("agent snapshot: empty node");
    TelemetrySnapshot& t = s.telemetry;
    field = "taken_at_ms";
    t.taken_at = TimePoint(std::chrono::milliseconds(j.at("taken_at_ms").get<int64_t>()));
    field = "backend_ok";
    t.backend_ok = j.at("backend_ok").get<bool>();
    t.backend_error = j.value("backend_error", "");
    t.sample_seconds = j.value("sample_seconds", 0.0);
    field = "gpus";
    for (const auto& d : j.at("gpus")) t.gpus.push_back(deviceFrom(d, s.node));
    field = "instances";
    for (const auto& d : j.at("instances")) t.instances.push_back(deviceFrom(d, s.node));
    field = "lost_gpus";
    if (j.contains("lost_gpus")) t.lost_gpus = j.at("lost_gpus").get<std::vector<std::string>>();
  } catch (const std::exception& e) {
    return invalid(std::string("agent snapshot: bad ") + field + ": " + e.what());
  }
  return s;
}

Result<AgentSnapshot> parseAgentSnapshot(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded()) return invalid("agent snapshot: not JSON");
  return parseAgentSnapshot(j);
}

}  // namespace sandman

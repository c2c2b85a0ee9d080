#include "api/gpu_json.h"

#include <map>

#include "core/gpu_leases.h"

namespace sandman {
namespace {

using nlohmann::json;

json optNumber(const std::optional<unsigned>& v) { return v ? json(*v) : json(nullptr); }
json optWatts(const std::optional<unsigned>& mw) { return mw ? json(*mw / 1000.0) : json(nullptr); }

// device uuid -> session id, for slices held by active sessions.
std::map<std::string, std::string> holders(const std::vector<Session>& active) {
  std::map<std::string, std::string> out;
  for (const auto& s : active) {
    if (s.gpu_uuid) out[*s.gpu_uuid] = s.id;
  }
  return out;
}

int computeSlicesOf(const GpuInfo& g) {
  int most = 0;
  for (const auto& p : g.profiles) most = std::max(most, p.compute_slices);
  return most;
}

json instanceJson(const GpuInfo& g, const MigInstance& inst, const std::map<std::string, std::string>& held) {
  auto it = held.find(inst.uuid);
  return {{"uuid", inst.uuid},
          {"profile", inst.profile_name},
          {"placement", {{"start", inst.placement_start}, {"size", inst.placement_size}}},
          {"gpu_instance_id", inst.gpu_instance_id},
          {"compute_instance_id", inst.compute_instance_id},
          {"memory", inst.memory_total_mib},
          {"parent_gpu", g.uuid},
          {"session_id", it == held.end() ? json(nullptr) : json(it->second)},
          {"allocated", it != held.end()}};
}

}  // namespace

json gpusJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active) {
  auto held = holders(active);
  json list = json::array();
  for (const auto& g : gpus) {
    json instances = json::array();
    for (const auto& inst : g.instances) instances.push_back(instanceJson(g, inst, held));
    auto whole = held.find(g.uuid);
    list.push_back({{"index", g.index},
                    {"uuid", g.uuid},
                    {"name", g.name},
                    {"memory_total", g.memory_total_mib},
                    {"memory_used", g.memory_used_mib},
                    {"memory_free", g.memory_free_mib},
                    {"utilization", optNumber(g.telemetry.utilization_gpu)},
                    {"temperature", optNumber(g.telemetry.temperature_c)},
                    {"power_usage", optWatts(g.telemetry.power_usage_mw)},
                    {"power_limit", optWatts(g.telemetry.power_limit_mw)},
                    {"mig_enabled", g.mig_enabled},
                    {"mig_pending", g.mig_pending},
                    {"mig_instances", instances},
                    {"session_id", whole == held.end() ? json(nullptr) : json(whole->second)}});
  }
  return {{"gpus", list}, {"count", gpus.size()}};
}

json profilesJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active) {
  auto held = GpuLeases::heldSlots(active);
  std::map<std::string, json> by_name;  // one entry per profile name, across GPU models
  auto rooms = remainingCapacities(gpus, held);
  for (size_t i = 0; i < gpus.size(); ++i) {
    const GpuInfo& g = gpus[i];
    auto& room = rooms[i];
    for (const auto& p : g.profiles) {
      json& entry = by_name[p.name];
      if (entry.is_null()) {
        entry = {{"name", p.name},
                 {"profile_id", p.profile_id},
                 {"compute_slices", p.compute_slices},
                 {"memory_slices", p.memory_slices},
                 {"memory_size", p.memory_mib * 1024 * 1024},
                 {"memory_mib", p.memory_mib},
                 {"instance_count", p.instance_count},
                 {"description", std::to_string(p.compute_slices) + "/" + std::to_string(computeSlicesOf(g)) +
                                     " GPU, " + std::to_string((p.memory_mib + 512) / 1024) + "GB Memory"},
                 {"gpus", json::array()}};
      }
      entry["gpus"].push_back({{"index", g.index}, {"uuid", g.uuid}, {"available", room[p.name]}});
    }
  }
  json list = json::array();
  for (auto& [_, entry] : by_name) list.push_back(std::move(entry));
  return {{"profiles", list}, {"count", list.size()}};
}

json availableJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active, MigMode mode) {
  auto held_by = holders(active);
  auto held = GpuLeases::heldSlots(active);
  json instances = json::array();
  json whole = json::array();
  std::map<std::string, int> creatable;
  auto rooms = remainingCapacities(gpus, held);
  for (size_t i = 0; i < gpus.size(); ++i) {
    const GpuInfo& g = gpus[i];
    for (const auto& inst : g.instances) {
      if (!held_by.count(inst.uuid) && !inst.uuid.empty()) instances.push_back(instanceJson(g, inst, held_by));
    }
    if (!g.mig_enabled && !held_by.count(g.uuid)) whole.push_back({{"index", g.index}, {"uuid", g.uuid}, {"name", g.name}});
    if (mode == MigMode::kDynamic && g.mig_enabled) {
      for (const auto& [name, n] : rooms[i]) creatable[name] += n;
    }
  }
  json out = {{"mig_mode", mode == MigMode::kDynamic ? "dynamic" : "static"},
              {"available_instances", instances},
              {"whole_gpus", whole},
              {"count", instances.size() + whole.size()}};
  if (mode == MigMode::kDynamic) out["creatable"] = creatable;
  return out;
}

}  // namespace sandman

#include "store/gpu_slot_json.h"

#include <nlohmann/json.hpp>

namespace sandman {

std::optional<std::string> gpuSlotToJson(const std::optional<GpuSlot>& slot) {
  if (!slot) return std::nullopt;
  const GpuSlot& g = *slot;
  nlohmann::json j = {{"gpu_index", g.gpu_index},     {"gpu_uuid", g.gpu_uuid},
                      {"profile", g.profile},         {"profile_id", g.profile_id},
                      {"placement_start", g.placement_start}, {"placement_size", g.placement_size},
                      {"gpu_instance_id", g.gpu_instance_id}, {"whole", g.whole},
                      {"created", g.created},         {"released", g.released},
                      {"attach", g.attach}};
  if (!g.product.empty()) j["product"] = g.product;
  if (!g.model.empty()) j["model"] = g.model;
  return j.dump();
}

std::optional<GpuSlot> gpuSlotFromJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  GpuSlot g;
  try {
    g.gpu_index = j.value("gpu_index", -1);
    g.gpu_uuid = j.value("gpu_uuid", "");
    g.profile = j.value("profile", "");
    g.profile_id = j.value("profile_id", -1);
    g.placement_start = j.value("placement_start", -1);
    g.placement_size = j.value("placement_size", 0);
    g.gpu_instance_id = j.value("gpu_instance_id", -1);
    g.whole = j.value("whole", false);
    g.created = j.value("created", false);
    g.released = j.value("released", false);
    g.attach = j.value("attach", "");
    g.product = j.value("product", "");
    g.model = j.value("model", "");
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return g;
}

}  // namespace sandman

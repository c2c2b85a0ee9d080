#include "sim_config.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "uuid5.h"

namespace nvmlsim {
namespace {

using nlohmann::json;

// Absent -> fallback; null -> NOT_SUPPORTED; else the number.
std::optional<unsigned> optionalField(const json& t, const char* key,
                                      std::optional<unsigned> fallback) {
  if (!t.contains(key)) return fallback;
  if (t.at(key).is_null()) return std::nullopt;
  return t.at(key).get<unsigned>();
}

Telemetry parseTelemetry(const json& t, const Model& model) {
  Telemetry tel;
  tel.power_limit_mw = optionalField(t, "power_limit_mw", model.power_limit_mw);
  tel.utilization_gpu = optionalField(t, "utilization_gpu", 0u);
  tel.utilization_memory = optionalField(t, "utilization_memory", 0u);
  tel.temperature = optionalField(t, "temperature", 30u);
  tel.power_usage_mw = optionalField(t, "power_usage_mw", model.power_limit_mw / 8);
  tel.memory_used_mib = t.value("memory_used_mib", 0ull);
  tel.memory_reserved_mib = t.value("memory_reserved_mib", 0ull);
  if (t.contains("processes")) {
    for (const auto& p : t.at("processes")) {
      SimProcess proc;
      proc.pid = p.at("pid").get<unsigned>();
      proc.used_memory_mib = p.value("used_memory_mib", 0ull);
      proc.mig = p.value("mig", std::string());
      tel.processes.push_back(proc);
    }
  }
  if (t.contains("mig_utilization")) {
    for (const auto& [uuid, value] : t.at("mig_utilization").items()) {
      tel.mig_utilization[uuid] = value.get<unsigned>();
    }
  }
  return tel;
}

bool parseGpu(const json& g, size_t index, GpuConfig* gpu, std::string* error) {
  const std::string where = "gpus[" + std::to_string(index) + "]";
  if (!g.contains("model")) {
    *error = where + ": \"model\" is required (one of " + knownModels() + ")";
    return false;
  }
  std::string model_key = g.at("model").get<std::string>();
  gpu->model = findModel(model_key);
  if (!gpu->model) {
    *error = where + ": unknown model \"" + model_key + "\" (known: " + knownModels() + ")";
    return false;
  }
  gpu->name = g.value("name", std::string(gpu->model->name));
  gpu->uuid = g.value("uuid", "GPU-" + uuid5("gpu/" + std::to_string(index) + "/" + model_key));
  if (gpu->uuid.rfind("GPU-", 0) != 0) {
    *error = where + ": uuid \"" + gpu->uuid + "\" must start with \"GPU-\"";
    return false;
  }
  gpu->mig_mode = g.value("mig_mode", false);
  gpu->mig_mode_pending = g.value("mig_mode_pending", gpu->mig_mode);
  if ((gpu->mig_mode || gpu->mig_mode_pending) && !gpu->model->migCapable()) {
    *error = where + ": model " + model_key + " does not support MIG; set \"mig_mode\": false";
    return false;
  }
  const json instances = g.value("mig_instances", json::array());
  if (!instances.empty() && !gpu->mig_mode) {
    *error = where + ": mig_instances need \"mig_mode\": true";
    return false;
  }
  for (const auto& inst : instances) {
    SeedInstance seed;
    const json& p = inst.at("profile");
    seed.profile = p.is_number() ? gpu->model->profileById(p.get<unsigned>())
                                 : gpu->model->profileByName(p.get<std::string>());
    if (!seed.profile) {
      *error = where + ": model " + model_key + " has no MIG profile " + p.dump();
      return false;
    }
    seed.start = inst.at("start").get<unsigned>();
    seed.compute_instances = inst.value("compute_instances", 1u);
    gpu->seeds.push_back(seed);
  }
  std::string seed_error;
  if (!seedGpu(*gpu->model, gpu->uuid, gpu->seeds, &gpu->seed_state, &seed_error)) {
    *error = where + "." + seed_error;
    return false;
  }
  gpu->telemetry = parseTelemetry(g.value("telemetry", json::object()), *gpu->model);
  for (const auto& [uuid, value] : gpu->telemetry.mig_utilization) {
    if (uuid.rfind("MIG-", 0) != 0 || value > 100) {
      *error = where + ".telemetry.mig_utilization: keys are \"MIG-...\" uuids and values 0-100";
      return false;
    }
  }
  gpu->gpm = g.value("gpm", gpu->model->hasGpm());
  if (gpu->gpm && !gpu->model->migCapable()) {
    *error = where + ": \"gpm\" needs a MIG-capable model (it only adds per-instance utilisation)";
    return false;
  }
  return true;
}

}  // namespace

bool parseConfig(const std::string& text, SimConfig* out, std::string* error) {
  *out = SimConfig{};
  try {
    json j = json::parse(text);
    out->driver_version = j.value("driver_version", out->driver_version);
    out->cuda_driver_version = j.value("cuda_driver_version", out->cuda_driver_version);
    if (!j.contains("gpus") || !j.at("gpus").is_array()) {
      *error = "\"gpus\" must be an array";
      return false;
    }
    size_t index = 0;
    for (const auto& g : j.at("gpus")) {
      GpuConfig gpu;
      if (!parseGpu(g, index++, &gpu, error)) return false;
      for (const auto& other : out->gpus) {
        if (other.uuid == gpu.uuid) {
          *error = "two GPUs share uuid " + gpu.uuid;
          return false;
        }
      }
      out->gpus.push_back(std::move(gpu));
    }
  } catch (const json::exception& e) {
    *error = e.what();
    return false;
  }
  return true;
}

bool loadConfigFile(const std::string& path, SimConfig* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::stringstream buf;
  buf << in.rdbuf();
  if (!parseConfig(buf.str(), out, error)) {
    *error = path + ": " + *error;
    return false;
  }
  return true;
}

}  // namespace nvmlsim

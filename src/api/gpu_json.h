// JSON views of the host's GPUs for GET /gpus, /gpus/profiles and
// /gpus/available (seed 002's field names, memory in MiB, power in W).
// Pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "gpu/allocator.h"
#include "gpu/gpu_backend.h"
#include "model/session.h"

namespace sandman {

nlohmann::json gpusJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active);
nlohmann::json profilesJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active);
nlohmann::json availableJson(const std::vector<GpuInfo>& gpus, const std::vector<Session>& active, MigMode mode);

}  // namespace sandman

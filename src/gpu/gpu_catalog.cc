#include "gpu/gpu_catalog.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace sandman {
namespace {

using nlohmann::json;

Error bad(const std::string& origin, const std::string& where, const std::string& why) {
  return invalid("GPU catalog " + origin + ": " + where + ": " + why +
                 " (see data/gpu-catalog.json for the format)");
}

// "3g.40gb" -> 3; 0 when the name does not start with <N>g.
int computeCountOf(const std::string& profile) {
  if (profile.size() < 2 || !std::isdigit(static_cast<unsigned char>(profile[0])) || profile[1] != 'g') return 0;
  return profile[0] - '0';
}

bool boundaryAt(const std::string& s, size_t pos, size_t len) {
  const bool left = pos == 0 || s[pos - 1] == '-';
  const bool right = pos + len == s.size() || s[pos + len] == '-';
  return left && right;
}

bool containsOnBoundaries(const std::string& hay, const std::string& needle) {
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) {
    if (boundaryAt(hay, pos, needle.size())) return true;
  }
  return false;
}

Result<CatalogProfile> readProfile(const json& j, const std::string& origin, const std::string& where) {
  if (!j.is_object()) return bad(origin, where, "a profile must be an object");
  CatalogProfile p;
  try {
    p.name = j.at("name").get<std::string>();
    p.compute_slices = j.at("compute_slices").get<int>();
    p.memory_slices = j.at("memory_slices").get<int>();
    p.memory_mib = j.value("memory_mib", int64_t{0});
    p.max_instances = j.value("max_instances", 0);
  } catch (const json::exception& e) {
    return bad(origin, where, std::string("needs name, compute_slices and memory_slices: ") + e.what());
  }
  if (p.name.empty() || p.compute_slices < 1 || p.memory_slices < 1) {
    return bad(origin, where + " " + p.name, "slices must be >= 1 and the name non-empty");
  }
  return p;
}

Result<CatalogModel> readModel(const json& j, const std::string& origin, size_t index) {
  const std::string where = "models[" + std::to_string(index) + "]";
  if (!j.is_object()) return bad(origin, where, "must be an object");
  CatalogModel m;
  try {
    m.key = j.at("key").get<std::string>();
    for (const auto& s : j.value("match", json::array())) m.match.push_back(normalizeModelName(s.get<std::string>()));
    m.memory_gb = j.value("memory_gb", 0);
    m.memory_mib = j.value("memory_mib", int64_t{0});
    m.architecture = j.value("architecture", "");
    m.status = j.value("status", "active");
    m.mig = j.value("mig", false);
    m.usd_per_hour = j.at("usd_per_hour").get<double>();
    m.compute_slices = j.value("compute_slices", 0);
    m.memory_slices = j.value("memory_slices", 0);
  } catch (const json::exception& e) {
    return bad(origin, where, std::string("needs key and usd_per_hour: ") + e.what());
  }
  if (m.key.empty()) return bad(origin, where, "key is empty");
  if (!std::isfinite(m.usd_per_hour) || m.usd_per_hour < 0) return bad(origin, m.key, "usd_per_hour must be >= 0");
  m.match.push_back(normalizeModelName(m.key));
  if (m.mig) {
    if (m.compute_slices < 1 || m.memory_slices < 1) {
      return bad(origin, m.key, "a MIG model needs compute_slices and memory_slices");
    }
    const json profiles = j.value("profiles", json::array());
    if (!profiles.is_array() || profiles.empty()) return bad(origin, m.key, "a MIG model needs profiles");
    for (const auto& pj : profiles) {
      auto p = readProfile(pj, origin, m.key);
      if (!p.ok()) return p.error();
      if (p->compute_slices > m.compute_slices || p->memory_slices > m.memory_slices) {
        return bad(origin, m.key + " " + p->name, "uses more slices than the GPU has");
      }
      m.profiles.push_back(std::move(p).value());
    }
  }
  return m;
}

}  // namespace

std::string normalizeModelName(const std::string& name) {
  std::string r;
  r.reserve(name.size());
  for (char c : name) {
    char l = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (l == ' ' || l == '_') l = '-';
    if (l == '-' && !r.empty() && r.back() == '-') continue;
    r += l;
  }
  return r;
}

const CatalogProfile* CatalogModel::profile(const std::string& name) const {
  for (const auto& p : profiles) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::optional<SliceBasis> parseSliceBasis(const std::string& s) {
  if (s == "compute") return SliceBasis::kCompute;
  if (s == "memory") return SliceBasis::kMemory;
  if (s == "max") return SliceBasis::kMax;
  return std::nullopt;
}

const char* toString(SliceBasis b) {
  switch (b) {
    case SliceBasis::kCompute: return "compute";
    case SliceBasis::kMemory: return "memory";
    case SliceBasis::kMax: return "max";
  }
  return "compute";
}

Result<GpuCatalog> GpuCatalog::parse(const std::string& json_text, const std::string& origin) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return bad(origin, "top level", "not a JSON object");
  if (!doc.contains("models") || !doc["models"].is_array()) return bad(origin, "top level", "no \"models\" array");
  GpuCatalog c;
  c.origin_ = origin;
  std::set<std::string> keys;
  size_t i = 0;
  for (const auto& mj : doc["models"]) {
    auto m = readModel(mj, origin, i++);
    if (!m.ok()) return m.error();
    if (!keys.insert(normalizeModelName(m->key)).second) return bad(origin, m->key, "key repeated");
    c.models_.push_back(std::move(m).value());
  }
  if (c.models_.empty()) return bad(origin, "models", "is empty");
  return c;
}

Result<GpuCatalog> GpuCatalog::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return invalid("cannot read GPU catalog " + path + ": give --gpu-catalog FILE, or install "
                          "data/gpu-catalog.json beside the sandman binary");
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

std::vector<std::string> GpuCatalog::defaultPaths(const std::string& exe_dir) {
  return {exe_dir + "/gpu-catalog.json", exe_dir + "/../share/sandman/gpu-catalog.json",
          exe_dir + "/../data/gpu-catalog.json"};
}

const CatalogModel* GpuCatalog::find(const std::string& model_name) const {
  const std::string name = normalizeModelName(model_name);
  const CatalogModel* best = nullptr;
  size_t best_len = 0;
  for (const auto& m : models_) {
    for (const auto& frag : m.match) {
      if (frag.size() > best_len && containsOnBoundaries(name, frag)) {
        best = &m;
        best_len = frag.size();
      }
    }
  }
  return best;
}

const CatalogModel* GpuCatalog::byKey(const std::string& key) const {
  const std::string k = normalizeModelName(key);
  for (const auto& m : models_) {
    if (normalizeModelName(m.key) == k) return &m;
  }
  return nullptr;
}

double GpuCatalog::share(const std::string& model_name, const std::string& profile, SliceBasis basis) const {
  if (profile.empty() || profile == "whole") return 1.0;
  const CatalogModel* m = find(model_name);
  const CatalogProfile* p = m != nullptr ? m->profile(profile) : nullptr;
  if (p == nullptr) {
    // Unknown to the catalog: the compute count in the name over 7.
    const int n = computeCountOf(profile);
    const int total = m != nullptr && m->compute_slices > 0 ? m->compute_slices : 7;
    return n > 0 ? std::min(1.0, static_cast<double>(n) / total) : 1.0;
  }
  const double compute = static_cast<double>(p->compute_slices) / m->compute_slices;
  const double memory = static_cast<double>(p->memory_slices) / m->memory_slices;
  switch (basis) {
    case SliceBasis::kCompute: return compute;
    case SliceBasis::kMemory: return memory;
    case SliceBasis::kMax: return std::max(compute, memory);
  }
  return compute;
}

}  // namespace sandman

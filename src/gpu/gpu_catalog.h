// GpuCatalog: what each GPU model is (memory, architecture, MIG profiles as
// compute and memory slices) and its list price, read from a JSON data file
// (data/gpu-catalog.json, or --gpu-catalog). Immutable once loaded; thread-safe to read.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

struct CatalogProfile {
  std::string name;  // "3g.40gb"
  int compute_slices = 0;
  int memory_slices = 0;
  int64_t memory_mib = 0;
  int max_instances = 0;
};

struct CatalogModel {
  std::string key;                 // "A100-SXM4-80GB": the name prices and the ledger use
  std::vector<std::string> match;  // normalised fragments of NVML model names
  int memory_gb = 0;
  int64_t memory_mib = 0;
  std::string architecture;
  std::string status;  // "active", "eol"
  bool mig = false;
  int compute_slices = 0;  // MIG models: 7, or 4 on A30
  int memory_slices = 0;   // MIG models: 8, or 4 on A30
  double usd_per_hour = 0;  // list price of the whole GPU
  std::vector<CatalogProfile> profiles;

  const CatalogProfile* profile(const std::string& name) const;
};

// Which part of a GPU a slice is charged for.
enum class SliceBasis { kCompute, kMemory, kMax };
std::optional<SliceBasis> parseSliceBasis(const std::string& s);  // compute|memory|max
const char* toString(SliceBasis b);

class GpuCatalog {
 public:
  // kInvalid naming the file and the entry when the JSON is not a catalog.
  static Result<GpuCatalog> parse(const std::string& json_text, const std::string& origin);
  static Result<GpuCatalog> load(const std::string& path);
  // Where the shipped catalog is looked for, in order, relative to the
  // directory of the running binary: beside it, ../share/sandman, ../data.
  static std::vector<std::string> defaultPaths(const std::string& exe_dir);

  // The model an NVML name ("NVIDIA A100 80GB PCIe"), a catalog key or a
  // Kubernetes product label ("NVIDIA-H100-80GB-HBM3") belongs to: the
  // longest `match` fragment found in it on '-' boundaries. nullptr: unknown.
  const CatalogModel* find(const std::string& model_name) const;
  const CatalogModel* byKey(const std::string& key) const;
  const std::vector<CatalogModel>& models() const { return models_; }
  const std::string& origin() const { return origin_; }

  // The share of its GPU a slot is (1 for a whole GPU or an unknown profile
  // of a known model is priced by the name's "<N>g" compute count).
  double share(const std::string& model_name, const std::string& profile, SliceBasis basis) const;

 private:
  std::vector<CatalogModel> models_;
  std::string origin_;
};

// Lower-cased, spaces and underscores as '-': the form `match` is written in.
std::string normalizeModelName(const std::string& name);

}  // namespace sandman

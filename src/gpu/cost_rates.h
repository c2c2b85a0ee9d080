// CostRates: what a GPU costs per hour now, by model (the catalog's list
// prices, overridden by --gpu-hourly-rates), and the share of it a MIG slice
// costs. Feeds /metrics' gpu_hourly_cost and the cost ledger's price history.
// Immutable after parse(); thread-safe to read.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "gpu/gpu_catalog.h"

namespace sandman {

// Used when --gpu-hourly-rates is empty and no catalog is given: indicative on-demand list prices
// (USD per whole GPU per hour). Operators with real prices pass their own.
inline constexpr const char* kDefaultGpuHourlyRates =
    "H200=4.50,H100=3.50,A100=2.00,A30=0.90,A10=0.75,L40S=1.20,L40=1.00,L4=0.50,V100=1.00,T4=0.35,4090=0.40";

class CostRates {
 public:
  // "A100=2.50,H100=4.00": MODEL=PRICE entries, comma-separated. MODEL is
  // matched case-insensitively as a substring of the GPU's model name, the
  // longest matching key winning ("A100" beats "A10" on an A100), so an entry
  // may be as specific as "A100-SXM4-80GB". The key "default" prices every
  // model no other key matches. An empty spec means kDefaultGpuHourlyRates;
  // a given spec replaces that list entirely. kInvalid names the bad entry.
  static Result<CostRates> parse(const std::string& spec);
  // The same entries as overrides over a catalog: a model no entry matches
  // costs its catalog list price, then "default", then 0. An empty spec
  // leaves the catalog's prices alone.
  static Result<CostRates> parse(const std::string& spec, std::shared_ptr<const GpuCatalog> catalog,
                                 SliceBasis basis = SliceBasis::kCompute);

  // Price of the whole GPU per hour; 0 for a model no entry matches.
  double wholeGpuPerHour(const std::string& model_name) const;
  // Compute slices of the whole GPU: 4 on A30, 7 on every other MIG GPU.
  static int computeSlicesOf(const std::string& model_name);
  // Price per hour of `compute_slices` of the GPU's slices (a MIG instance's
  // share); compute_slices <= 0 means the whole GPU.
  double perHour(const std::string& model_name, int compute_slices) const;
  // Price per hour of a slot of `profile` ("whole" or "": the GPU), its share
  // taken from the catalog by the slice basis (compute slices without one).
  double slotPerHour(const std::string& model_name, const std::string& profile, int compute_slices) const;
  // The share of its GPU that slot is (0..1).
  double share(const std::string& model_name, const std::string& profile, int compute_slices) const;
  // The catalog key of the model ("A100-SXM4-80GB"), or the name as given
  // when the catalog does not know it: what the price history is keyed by.
  std::string modelKey(const std::string& model_name) const;
  const GpuCatalog* catalog() const { return catalog_.get(); }
  SliceBasis basis() const { return basis_; }

  const std::vector<std::pair<std::string, double>>& entries() const { return entries_; }

 private:
  std::vector<std::pair<std::string, double>> entries_;  // key lower-cased
  double default_ = 0;
  std::shared_ptr<const GpuCatalog> catalog_;
  SliceBasis basis_ = SliceBasis::kCompute;
};

}  // namespace sandman

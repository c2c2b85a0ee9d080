// Allocation by need: a session asks for gpu_memory_gb (and a workload kind)
// instead of a MIG profile, and gets the cheapest device that fits now.
// Pure rules over GpuInfo, held slots and a price function; the placement
// itself is the allocator's (gpu/allocator.h). Thread-safe: stateless.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "gpu/allocator.h"

namespace sandman {

enum class Workload { kInference, kTraining };
std::optional<Workload> parseWorkload(const std::string& s);  // inference|training
const char* toString(Workload w);

struct GpuNeed {
  double memory_gb = 0;  // decimal GB (10^9 bytes): 1g.10gb serves 10
  Workload workload = Workload::kInference;
};

// USD per hour of `profile` ("whole" for a whole GPU) on a GPU of `model_name`
// with `compute_slices` compute slices: the price the ledger would book now.
using SlotPricer = std::function<double(const std::string& model_name, const std::string& profile, int compute_slices)>;

// One kind of device that fits the need now, with its price.
struct NeedOption {
  std::string model;    // the GPU's model name as NVML gives it
  std::string profile;  // MIG profile or "whole"
  int compute_slices = 0;  // 0 for whole
  double memory_gb = 0;
  double usd_per_hour = 0;
  Allocation allocation;  // where the allocator would put it
};

struct NeedChoice {
  Allocation allocation;
  std::string device;  // "MIG 1g.10gb on GPU 0 (NVIDIA A100-SXM4-80GB)", "GPU 1 (NVIDIA L4)"
  std::string profile;
  double usd_per_hour = 0;
  std::string why;
  std::vector<NeedOption> options;  // every fitting kind, best first
};

// Memory of a profile / whole GPU in decimal GB: NVML's MiB when known, else
// the number in the profile's name ("3g.40gb" -> 40).
double profileMemoryGb(const MigProfile& p);
double wholeMemoryGb(const GpuInfo& g);

// Picks the device for `need`.
//
// Candidates are kinds of device: each MIG profile of each MIG-enabled GPU
// model whose memory is at least the need, and each MIG-off GPU model with
// enough memory (a MIG GPU is never handed out whole: MIG mode is not
// changed). A kind fits now when allocate() places it on one of the GPUs of
// that model (static mode: a free existing instance; dynamic: a free
// instance or room to create one); the allocator's own packing then chooses
// which GPU and placement.
//
// Order: the lowest price per hour (to the micro-dollar), then by workload:
// - inference: the least memory, then the fewest compute slices (the
//   smallest slice that holds the model leaves the most for others);
// - training: the most compute slices, then the most memory (at equal price
//   more SMs and headroom for activations are free speed);
// then the lowest GPU index and placement, then the profile name.
//
// Errors: need <= 0 or not finite, or a profile / instance asked as well:
// kInvalid. No device on this host could ever hold it (larger than every
// profile and MIG-off GPU): kInvalid naming the largest. Something could
// hold it but nothing that fits is free: kConflict naming what would fit.
Result<NeedChoice> allocateByNeed(const std::vector<GpuInfo>& gpus, const std::vector<HeldSlot>& held,
                                  const GpuNeed& need, MigMode mode, const SlotPricer& price);

// "$0.29/h" with two decimals (four below a cent).
std::string usdPerHourText(double usd);

}  // namespace sandman

// Model tables from reference/mig.md §1 (profile ids, MB, counts, engines and
// placements per model; A100/H100-family placements are the real -lgipp ones).
#include "catalog.h"

#include <strings.h>

#include <string>

#include "gpu/nvml_api.h"

namespace nvmlsim {
namespace {

// Placement families on GPUs with 8 memory slices / 7 compute slices.
#define P1 1, {0, 1, 2, 3, 4, 5, 6}, 7
#define P1D 2, {0, 2, 4, 6}, 4
#define P2 2, {0, 2, 4}, 3
#define P3 4, {0, 4}, 2
#define P4 4, {0}, 1
#define P7 8, {0}, 1
// A30: 4 memory slices / 4 compute slices.
#define Q1 1, {0, 1, 2, 3}, 4
#define Q2 2, {0, 2}, 2
#define Q4 4, {0}, 1

// clang-format off
constexpr GiProfile kA100_40[] = {
  //  index                                   id  name          sl  MB     cnt SM  CE DEC ENC JPG OFA placements
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE,      19, "1g.5gb",     1, 4864,  7, 14, 1, 0, 0, 0, 0, P1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE,      14, "2g.10gb",    2, 9856,  3, 28, 2, 1, 0, 0, 0, P2},
  {NVML_GPU_INSTANCE_PROFILE_3_SLICE,       9, "3g.20gb",    3, 19968, 2, 42, 3, 2, 0, 0, 0, P3},
  {NVML_GPU_INSTANCE_PROFILE_4_SLICE,       5, "4g.20gb",    4, 19968, 1, 56, 4, 2, 0, 0, 0, P4},
  {NVML_GPU_INSTANCE_PROFILE_7_SLICE,       0, "7g.40gb",    7, 40192, 1, 98, 7, 5, 0, 1, 1, P7},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, "1g.5gb+me",  1, 4864,  1, 14, 1, 1, 0, 1, 1, P1},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, "1g.10gb",    1, 9856,  4, 14, 1, 1, 0, 0, 0, P1D},
};
constexpr GiProfile kA100_80[] = {
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE,      19, "1g.10gb",    1, 9728,  7, 14, 1, 0, 0, 0, 0, P1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE,      14, "2g.20gb",    2, 19968, 3, 28, 2, 1, 0, 0, 0, P2},
  {NVML_GPU_INSTANCE_PROFILE_3_SLICE,       9, "3g.40gb",    3, 40192, 2, 42, 3, 2, 0, 0, 0, P3},
  {NVML_GPU_INSTANCE_PROFILE_4_SLICE,       5, "4g.40gb",    4, 40192, 1, 56, 4, 2, 0, 0, 0, P4},
  {NVML_GPU_INSTANCE_PROFILE_7_SLICE,       0, "7g.80gb",    7, 80896, 1, 98, 7, 5, 0, 1, 1, P7},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, "1g.10gb+me", 1, 9728,  1, 14, 1, 1, 0, 1, 1, P1},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, "1g.20gb",    1, 19968, 4, 14, 1, 1, 0, 0, 0, P1D},
};
constexpr GiProfile kA30[] = {
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE,      14, "1g.6gb",     1, 5952,  4, 14, 1, 1, 0, 0, 0, Q1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE,       5, "2g.12gb",    2, 11968, 2, 28, 2, 2, 0, 0, 0, Q2},
  {NVML_GPU_INSTANCE_PROFILE_4_SLICE,       0, "4g.24gb",    4, 24000, 1, 56, 4, 4, 0, 1, 1, Q4},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 21, "1g.6gb+me",  1, 5952,  1, 14, 1, 1, 0, 1, 1, Q1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1,  6, "2g.12gb+me", 2, 11968, 1, 28, 2, 2, 0, 1, 1, Q2},
};
constexpr GiProfile kH100_80[] = {
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE,      19, "1g.10gb",    1, 9984,  7, 16,  1, 1, 0, 1, 0, P1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE,      14, "2g.20gb",    2, 20096, 3, 32,  2, 2, 0, 2, 0, P2},
  {NVML_GPU_INSTANCE_PROFILE_3_SLICE,       9, "3g.40gb",    3, 40448, 2, 60,  3, 3, 0, 3, 0, P3},
  {NVML_GPU_INSTANCE_PROFILE_4_SLICE,       5, "4g.40gb",    4, 40448, 1, 64,  4, 4, 0, 4, 0, P4},
  {NVML_GPU_INSTANCE_PROFILE_7_SLICE,       0, "7g.80gb",    7, 81152, 1, 132, 8, 7, 0, 7, 1, P7},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, "1g.10gb+me", 1, 9984,  1, 16,  1, 1, 0, 1, 1, P1},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, "1g.20gb",    1, 20096, 4, 26,  1, 1, 0, 1, 0, P1D},
};
constexpr GiProfile kH200[] = {
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE,      19, "1g.18gb",    1, 18432,  7, 16,  1, 1, 0, 1, 0, P1},
  {NVML_GPU_INSTANCE_PROFILE_2_SLICE,      14, "2g.35gb",    2, 35840,  3, 32,  2, 2, 0, 2, 0, P2},
  {NVML_GPU_INSTANCE_PROFILE_3_SLICE,       9, "3g.71gb",    3, 72704,  2, 60,  3, 3, 0, 3, 0, P3},
  {NVML_GPU_INSTANCE_PROFILE_4_SLICE,       5, "4g.71gb",    4, 72704,  1, 64,  4, 4, 0, 4, 0, P4},
  {NVML_GPU_INSTANCE_PROFILE_7_SLICE,       0, "7g.141gb",   7, 144384, 1, 132, 8, 7, 0, 7, 1, P7},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, 20, "1g.18gb+me", 1, 18432,  1, 16,  1, 1, 0, 1, 1, P1},
  {NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2, 15, "1g.35gb",    1, 35840,  4, 26,  1, 1, 0, 1, 0, P1D},
};

constexpr Model kModels[] = {
  // key               aliases                        name                       MiB     limit mW mem cmp profiles
  {"A100-SXM4-40GB", "A100-40GB",                   "NVIDIA A100-SXM4-40GB",   40960,  400000, 8, 7, kA100_40},
  {"A100-PCIE-40GB", "",                            "NVIDIA A100-PCIE-40GB",   40960,  250000, 8, 7, kA100_40},
  {"A100-SXM4-80GB", "A100-80GB",                   "NVIDIA A100-SXM4-80GB",   81920,  400000, 8, 7, kA100_80},
  {"A100-PCIE-80GB", "",                            "NVIDIA A100 80GB PCIe",   81920,  300000, 8, 7, kA100_80},
  {"A30-24GB",       "A30",                         "NVIDIA A30",              24576,  165000, 4, 4, kA30},
  {"H100-SXM5-80GB", "H100-80GB",                   "NVIDIA H100 80GB HBM3",   81559,  700000, 8, 7, kH100_80},
  {"H100-PCIE-80GB", "",                            "NVIDIA H100 PCIe",        81559,  350000, 8, 7, kH100_80},
  {"H200-141GB",     "H200",                        "NVIDIA H200 141GB HBM3e", 144384, 700000, 8, 7, kH200},
  {"RTX-4090",       "RTX4090,GeForce-RTX-4090",    "NVIDIA GeForce RTX 4090", 24564,  450000, 0, 0, {}},
  {"RTX-3090",       "RTX3090,GeForce-RTX-3090",    "NVIDIA GeForce RTX 3090", 24576,  350000, 0, 0, {}},
  {"V100-SXM2-16GB", "V100-16GB",                   "Tesla V100-SXM2-16GB",    16384,  300000, 0, 0, {}},
  {"V100-SXM2-32GB", "V100-32GB,V100",              "Tesla V100-SXM2-32GB",    32768,  300000, 0, 0, {}},
};
// clang-format on

constexpr CiProfile kCiProfiles[] = {
    {NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, 1}, {NVML_COMPUTE_INSTANCE_PROFILE_2_SLICE, 2},
    {NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE, 3}, {NVML_COMPUTE_INSTANCE_PROFILE_4_SLICE, 4},
    {NVML_COMPUTE_INSTANCE_PROFILE_7_SLICE, 7},
};

bool keyMatches(std::string_view key, std::string_view candidate) {
  return key.size() == candidate.size() &&
         strncasecmp(key.data(), candidate.data(), key.size()) == 0;
}

bool aliasMatches(std::string_view key, std::string_view aliases) {
  while (!aliases.empty()) {
    size_t comma = aliases.find(',');
    if (keyMatches(key, aliases.substr(0, comma))) return true;
    if (comma == std::string_view::npos) break;
    aliases.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

bool GiProfile::validStart(unsigned start) const {
  for (unsigned s : placementStarts()) {
    if (s == start) return true;
  }
  return false;
}

const GiProfile* Model::profileByIndex(unsigned index) const {
  for (const auto& p : profiles) {
    if (p.index == index) return &p;
  }
  return nullptr;
}

const GiProfile* Model::profileById(unsigned id) const {
  for (const auto& p : profiles) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const GiProfile* Model::profileByName(std::string_view name) const {
  if (name.substr(0, 4) == "MIG ") name.remove_prefix(4);
  for (const auto& p : profiles) {
    if (keyMatches(name, p.name)) return &p;
  }
  return nullptr;
}

const Model* findModel(std::string_view key) {
  for (const auto& m : kModels) {
    if (keyMatches(key, m.key) || aliasMatches(key, m.aliases)) return &m;
  }
  return nullptr;
}

const char* knownModels() {
  return "A100-SXM4-40GB, A100-PCIE-40GB, A100-SXM4-80GB, A100-PCIE-80GB, A30-24GB, "
         "H100-SXM5-80GB, H100-PCIE-80GB, H200-141GB, RTX-4090, RTX-3090, V100-SXM2-16GB, "
         "V100-SXM2-32GB";
}

const CiProfile* ciProfileByIndex(unsigned index, unsigned gi_slices) {
  for (const auto& p : kCiProfiles) {
    if (p.id == index) return p.slices <= gi_slices ? &p : nullptr;
  }
  return nullptr;
}

}  // namespace nvmlsim

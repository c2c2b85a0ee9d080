#include "gpu/cost_rates.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

CostRates parsed(const std::string& spec) {
  auto r = CostRates::parse(spec);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : CostRates();
}

TEST(CostRates, LongestMatchingModelKeyWins) {
  CostRates r = parsed("A10=1.00,A100=2.50,A100-SXM4-80GB=3.00,H100=4.00");
  EXPECT_DOUBLE_EQ(r.wholeGpuPerHour("NVIDIA A100-SXM4-40GB"), 2.50);
  EXPECT_DOUBLE_EQ(r.wholeGpuPerHour("NVIDIA A100-SXM4-80GB"), 3.00);
  EXPECT_DOUBLE_EQ(r.wholeGpuPerHour("NVIDIA A10"), 1.00);
  EXPECT_DOUBLE_EQ(r.wholeGpuPerHour("nvidia h100 80gb hbm3"), 4.00) << "matching ignores case";
}

TEST(CostRates, UnmatchedModelCostsDefaultOrZero) {
  EXPECT_DOUBLE_EQ(parsed("A100=2").wholeGpuPerHour("RTX-4090"), 0);
  EXPECT_DOUBLE_EQ(parsed("A100=2, default = 0.5").wholeGpuPerHour("RTX-4090"), 0.5);
}

TEST(CostRates, MigSliceCostsItsComputeShare) {
  CostRates r = parsed("A100=2.80,A30=1.00");
  EXPECT_DOUBLE_EQ(r.perHour("A100-SXM4-80GB", 1), 0.40);
  EXPECT_DOUBLE_EQ(r.perHour("A100-SXM4-80GB", 3), 1.20);
  EXPECT_DOUBLE_EQ(r.perHour("A100-SXM4-80GB", 0), 2.80) << "0 slices: the whole GPU";
  EXPECT_DOUBLE_EQ(r.perHour("A30-24GB", 1), 0.25) << "A30 has 4 compute slices";
  EXPECT_EQ(CostRates::computeSlicesOf("NVIDIA H100"), 7);
}

TEST(CostRates, EmptySpecUsesTheBuiltInListPrices) {
  CostRates r = parsed("");
  EXPECT_GT(r.wholeGpuPerHour("NVIDIA H100-SXM5-80GB"), r.wholeGpuPerHour("NVIDIA A100-SXM4-80GB"));
  EXPECT_GT(r.wholeGpuPerHour("NVIDIA A100-SXM4-80GB"), r.wholeGpuPerHour("NVIDIA A10"));
  EXPECT_GT(r.wholeGpuPerHour("RTX-4090"), 0);
}

TEST(CostRates, RejectsMalformedSpecsNamingTheEntry) {
  for (const char* bad : {"A100", "A100=", "=2", "A100=two", "A100=-1", "A100=2x", "A100=1,,H100=2",
                          "A100=1,a100=2", "A100=inf"}) {
    auto r = CostRates::parse(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::kInvalid);
    EXPECT_NE(r.error().message.find("--gpu-hourly-rates"), std::string::npos) << r.error().message;
  }
}

}  // namespace
}  // namespace sandman

// Shared by the cost tests: RFC 3339 times as unix ms, and the catalog the
// build ships (data/gpu-catalog.json, found as the daemon finds it).
// Header-only, gtest assertions on failure.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/time_format.h"
#include "gpu/gpu_catalog.h"

namespace sandman::testing {

inline int64_t at(const std::string& rfc3339) {
  auto t = parseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t ? toUnixMillis(*t) : 0;
}

inline std::shared_ptr<const GpuCatalog> shippedCatalog() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path().string();
  std::vector<std::string> paths = GpuCatalog::defaultPaths(exe_dir);
  paths.push_back(exe_dir + "/../../data/gpu-catalog.json");
  for (const auto& p : paths) {
    if (!fs::exists(p, ec)) continue;
    auto c = GpuCatalog::load(p);
    EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
    if (c.ok()) return std::make_shared<GpuCatalog>(std::move(c).value());
  }
  ADD_FAILURE() << "no gpu-catalog.json beside " << exe_dir;
  return nullptr;
}

}  // namespace sandman::testing

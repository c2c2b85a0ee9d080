// NvmlSimEnv: a private copy of an NVML simulator fixture in a temp dir (the
// simulator writes its MIG state next to the config), SANDMAN_NVML_SIM_CONFIG
// pointing at it, and the simulator library found beside the test binary.
// One per test; not thread-safe (it sets process environment).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gpu/nvml_backend.h"

namespace sandman::testing {

class NvmlSimEnv {
 public:
  // `fixture`: a file name under fixtures/nvml-sim/, copied as is.
  explicit NvmlSimEnv(const std::string& fixture) {
    char tmpl[] = "/tmp/sandman-nvml-XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    config_ = dir_ + "/" + fixture;
    std::error_code ec;
    std::filesystem::copy_file(fixturesDir() + "/nvml-sim/" + fixture, config_, ec);
    EXPECT_FALSE(ec) << "copying fixture " << fixture << " from " << fixturesDir() << ": "
                     << ec.message();
    std::filesystem::permissions(config_, std::filesystem::perms::owner_read |
                                              std::filesystem::perms::owner_write, ec);
    setenv("SANDMAN_NVML_SIM_CONFIG", config_.c_str(), 1);
    unsetenv("SANDMAN_NVML_SIM_STATE");
  }
  ~NvmlSimEnv() {
    unsetenv("SANDMAN_NVML_SIM_CONFIG");
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  NvmlSimEnv(const NvmlSimEnv&) = delete;
  NvmlSimEnv& operator=(const NvmlSimEnv&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& config() const { return config_; }
  std::string statePath() const { return config_ + ".state"; }

  std::string readConfig() const {
    std::ifstream in(config_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  // Replaces the config the way a test should: write a temp file, rename.
  void writeConfig(const std::string& text) const {
    std::string tmp = config_ + ".new";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, config_);
  }

  // The simulator is built beside the test binaries.
  static std::string libraryPath() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (exe.parent_path() / "libsandman-nvml-sim.so").string();
  }
  // $SANDMAN_FIXTURES_DIR (the directory holding nvml-sim/), else the copy in
  // the source tree (tests/fixtures).
  static std::string fixturesDir() {
    const char* env = std::getenv("SANDMAN_FIXTURES_DIR");
    if (env != nullptr && *env != '\0') return env;
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures").string();
  }

  // The production loader over the simulator; fails the test if it does not load.
  static NvmlBackendPtr load() {
    auto r = NvmlBackend::load(libraryPath());
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? std::move(r).value() : nullptr;
  }

 private:
  std::string dir_;
  std::string config_;
};

}  // namespace sandman::testing

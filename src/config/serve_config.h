// ServeConfig: every `sandman serve` setting, from flags, then SANDMAN_<NAME>
// environment variables (and seed 000's DB_PATH / WORKSPACE_ROOT), then
// defaults. Plain value type.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace sandman {

struct ServeConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;
  std::string db = "/var/lib/sandman/sandman.db";
  std::string workspace_root = "/srv/workspaces";
  std::string image = "sandman-workspace:latest";
  int ssh_port_start = 10000;
  int ssh_port_end = 20000;
  std::string ssh_bind = "0.0.0.0";
  std::string ssh_host;  // default: this machine's name
  int ttl_default_min = 60;
  int ttl_max_min = 1440;
  std::string memory = "4g";
  double cpus = 2.0;
  int64_t pids_limit = 1024;
  std::string network = "sandman-sessions";
  std::string docker_host = "unix:///var/run/docker.sock";
  std::string auth = "token";
  std::string token_file = "/var/lib/sandman/api-token";
  std::string log_format = "text";
  bool isolate_host = true;
  bool gateway = true;
  std::string gateway_bind = "0.0.0.0";
  int gateway_port = 2222;
  std::string gateway_host_key;  // default: <db dir>/gateway_host_ed25519_key
  int expiry_warning_min = 5;
  std::string gpu_backend = "auto";  // auto | nvml | none
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string mig_mode = "dynamic";  // static | dynamic
  std::string default_mig_profile = "3g";
};

// Registers the flags on `app` (each with its SANDMAN_ env name).
void addServeFlags(CLI::App& app, ServeConfig& cfg);
// Applies DB_PATH / WORKSPACE_ROOT where neither flag nor SANDMAN_ var was given,
// fills derived defaults, and checks ranges. kInvalid with the offending flag.
Status finalizeServeConfig(CLI::App& app, ServeConfig& cfg);

// "512m", "4g", "1073741824" -> bytes.
Result<int64_t> parseByteSize(const std::string& s);

}  // namespace sandman

// Runtime: the container engine seen by core (Docker today, Kubernetes later).
// Implementations are thread-safe.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace sandman {

struct BindMount {
  std::string host_path;
  std::string container_path;
  bool read_only = false;
};

struct ContainerSpec {
  std::string name;
  std::string image;
  std::string user;  // "uid:gid"
  std::string hostname;
  std::string working_dir;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  // "KEY=value"
  std::map<std::string, std::string> labels;
  std::vector<BindMount> binds;
  std::string network;
  // One published TCP port: host_ip:host_port -> container_port.
  std::string publish_host_ip;
  int publish_host_port = 0;
  int container_port = 0;
  // Hardening and limits; 0 means "no limit".
  int64_t memory_bytes = 0;
  int64_t nano_cpus = 0;
  int64_t pids_limit = 0;
  // GPU devices (MIG or GPU uuids) handed over by the nvidia runtime
  // (HostConfig.DeviceRequests, driver "nvidia"); empty: none.
  std::vector<std::string> gpu_device_ids;
};

struct ContainerInfo {
  std::string id;
  std::string name;
  bool running = false;
  std::map<std::string, std::string> labels;
  // The runtime's word for where the container stands ("running", "exited",
  // "created", ...), and its exit code once it has exited (-1: unknown), so
  // a session that ends because its container stopped can say how.
  std::string state = {};
  int exit_code = -1;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual Status ping() = 0;
  virtual Result<bool> imageExists(const std::string& image) = 0;
  // True when the engine has the nvidia runtime, so DeviceRequests work.
  virtual Result<bool> hasNvidiaRuntime() = 0;
  // A bridge network with inter-container traffic disabled; created if absent.
  virtual Status ensureNetwork(const std::string& name) = 0;
  virtual Status removeNetwork(const std::string& name) = 0;
  // The host-side interface of a bridge network ("br-<id>"), for firewalling.
  virtual Result<std::string> networkInterface(const std::string& name) = 0;
  virtual Result<std::string> createContainer(const ContainerSpec& spec) = 0;  // returns the id
  virtual Status startContainer(const std::string& id) = 0;
  // Force-removes; a container that is already gone is success.
  virtual Status removeContainer(const std::string& id) = 0;
  // All containers (running or not) carrying a label: "key" or "key=value".
  virtual Result<std::vector<ContainerInfo>> listContainers(const std::string& label_key) = 0;
  // NotFound when absent.
  virtual Result<ContainerInfo> inspectContainer(const std::string& id) = 0;
};

using RuntimePtr = std::unique_ptr<Runtime>;

}  // namespace sandman

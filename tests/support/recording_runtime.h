// RecordingRuntime: an in-memory Runtime for lifecycle unit tests. It records
// every call and can be told to fail a chosen one. The product path never
// uses it; integration tests run the real DockerRuntime. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/runtime.h"

namespace sandman::testing {

class RecordingRuntime final : public Runtime {
 public:
  Status ping() override { return {}; }
  Result<bool> imageExists(const std::string&) override { return true; }
  Result<bool> hasNvidiaRuntime() override { return false; }
  Status ensureNetwork(const std::string&) override { return {}; }
  Status removeNetwork(const std::string&) override { return {}; }
  Result<std::string> networkInterface(const std::string&) override { return std::string("br-test"); }

  Result<std::string> createContainer(const ContainerSpec& spec) override {
    std::lock_guard l(mu_);
    calls.push_back("create " + spec.name);
    if (fail_create) return unavailable("injected create failure");
    std::string id = "c";
    id += std::to_string(++next_id_);  // not "c" + ...: g++ 12 -O2 warns -Wrestrict on that (a false positive)
    containers[id] = {id, spec.name, false, spec.labels};
    specs[id] = spec;
    return id;
  }
  Status startContainer(const std::string& id) override {
    std::lock_guard l(mu_);
    calls.push_back("start " + id);
    if (fail_start) return conflict("injected start failure: port is already allocated");
    if (!containers.count(id)) return notFound("no container " + id);
    containers[id].running = true;
    return {};
  }
  Status removeContainer(const std::string& id) override {
    if (on_remove) on_remove(id);  // outside the lock: a test may block here (a slow `docker rm`)
    std::lock_guard l(mu_);
    calls.push_back("remove " + id);
    if (fail_remove) return unavailable("injected remove failure");
    containers.erase(id);
    return {};
  }
  Result<std::vector<ContainerInfo>> listContainers(const std::string& label) override {
    std::lock_guard l(mu_);
    if (fail_list) return unavailable("injected list failure: cannot reach Docker");
    auto eq = label.find('=');
    std::string key = label.substr(0, eq), value = eq == std::string::npos ? "" : label.substr(eq + 1);
    std::vector<ContainerInfo> out;
    for (const auto& [id, c] : containers) {
      auto it = c.labels.find(key);
      if (it != c.labels.end() && (eq == std::string::npos || it->second == value)) out.push_back(c);
    }
    return out;
  }
  Result<ContainerInfo> inspectContainer(const std::string& id) override {
    std::lock_guard l(mu_);
    auto it = containers.find(id);
    if (it == containers.end()) return notFound("no container " + id);
    return it->second;
  }

  size_t count() {
    std::lock_guard l(mu_);
    return containers.size();
  }

  // Test knobs and records; touch only while no call is in flight.
  bool fail_create = false;
  bool fail_start = false;
  bool fail_remove = false;
  bool fail_list = false;
  std::function<void(const std::string& id)> on_remove;
  std::vector<std::string> calls;
  std::map<std::string, ContainerInfo> containers;
  std::map<std::string, ContainerSpec> specs;

 private:
  std::mutex mu_;
  int next_id_ = 0;
};

}  // namespace sandman::testing

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
  std::string engineName() const override { return "Docker"; }
  Status ping() override { return {}; }
  bool directPorts() const override { return direct_ports; }
  bool schedulesGpus() const override { return schedules_gpus; }
  bool hostWorkspaces() const override { return direct_ports; }

  Result<std::string> launch(const SessionWorkload& w) override {
    std::lock_guard l(mu_);
    calls.push_back("launch " + w.session_id);
    if (fail_create) return unavailable("injected create failure");
    if (fail_start) return conflict("injected start failure: port is already allocated");
    std::string id = "c";
    id += std::to_string(++next_id_);  // not "c" + ...: g++ 12 -O2 warns -Wrestrict on that (a false positive)
    WorkloadInfo info;
    info.id = id;
    info.session_id = w.session_id;
    info.running = true;
    info.state = "running";
    info.gpu_uuid = assign_gpu;
    if (on_launch) on_launch(info);
    containers[id] = info;
    workloads[id] = w;
    return id;
  }
  Result<WorkloadInfo> inspect(const std::string& id) override {
    std::lock_guard l(mu_);
    auto it = containers.find(id);
    if (it == containers.end()) return notFound("no container " + id);
    return it->second;
  }
  Result<WorkloadEndpoint> endpoint(const std::string&, int direct_port) override {
    return WorkloadEndpoint{"127.0.0.1", direct_port};
  }
  Status stop(const std::string& id) override {
    if (on_remove) on_remove(id);  // outside the lock: a test may block here (a slow `docker rm`)
    std::lock_guard l(mu_);
    calls.push_back("remove " + id);
    if (fail_remove) return unavailable("injected remove failure");
    containers.erase(id);
    others.erase(id);
    return {};
  }
  Result<std::vector<WorkloadInfo>> listOurs() override {
    std::lock_guard l(mu_);
    if (fail_list) return unavailable("injected list failure: cannot reach Docker");
    std::vector<WorkloadInfo> out;
    for (const auto& [id, c] : containers) out.push_back(c);
    return out;
  }

  // A shared engine, as two replicas see it (Kubernetes): what each launched
  // workload records of its session, read back by either SessionManager.
  Result<std::vector<RecordedSession>> recordedSessions() override {
    std::lock_guard l(mu_);
    if (fail_list) return unavailable("injected list failure");
    std::vector<RecordedSession> out;
    for (const auto& [id, c] : containers) {
      auto w = workloads.find(id);
      if (w == workloads.end()) continue;
      RecordedSession r;
      r.session_id = w->second.session_id;
      r.user_id = w->second.user_id;
      r.workload_id = id;
      r.image = w->second.image;
      r.uid = w->second.uid;
      r.gid = w->second.gid;
      r.created_at = w->second.created_at;
      r.expires_at = w->second.expires_at;
      r.user_public_key = w->second.user_public_key;
      r.host_public_key = w->second.host_public_key;
      r.gpu_resource = w->second.gpu_resource;
      r.gpu_product = w->second.gpu_product;
      r.gpu_uuid = c.gpu_uuid;
      r.running = c.running;
      out.push_back(std::move(r));
    }
    return out;
  }
  Result<std::string> gatewayKey(const std::string& session_id) override {
    std::lock_guard l(mu_);
    for (const auto& [id, w] : workloads) {
      if (w.session_id == session_id && containers.count(id) && !w.gateway_private_key.empty()) {
        return w.gateway_private_key;
      }
    }
    return notFound("no gateway key for " + session_id);
  }
  Status recordExpiry(const std::string& id, TimePoint expires_at) override {
    std::lock_guard l(mu_);
    ++expiries_recorded;
    auto it = workloads.find(id);
    if (it == workloads.end()) return notFound("no workload " + id);
    it->second.expires_at = expires_at;
    return {};
  }

  // A workload as a test plants it (one the daemon did not launch).
  static WorkloadInfo planted(std::string id, std::string session_id, bool running, std::string state) {
    WorkloadInfo w;
    w.id = std::move(id);
    w.session_id = std::move(session_id);
    w.running = running;
    w.state = std::move(state);
    return w;
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
  bool direct_ports = true;
  bool schedules_gpus = false;
  std::optional<std::string> assign_gpu;  // the device an engine-scheduled workload is given
  std::function<void(const std::string& id)> on_remove;
  std::function<void(WorkloadInfo&)> on_launch;  // shapes what inspect() reports of a new workload
  std::vector<std::string> calls;
  std::map<std::string, WorkloadInfo> containers;   // this daemon's
  std::map<std::string, WorkloadInfo> others;       // another daemon's: never listed as ours
  std::map<std::string, SessionWorkload> workloads;
  int expiries_recorded = 0;

 private:
  std::mutex mu_;
  int next_id_ = 0;
};

}  // namespace sandman::testing

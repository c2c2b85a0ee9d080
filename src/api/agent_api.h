// AgentApi: what `sandman agent` serves on the node: GET /api/v1/agent/snapshot
// (the node's last sample with each device's pids and holding pod, for the
// control daemon), GET /metrics (the node's GPU series, dcgm-exporter style,
// with a node label) and GET /healthz. Read-only: every other method is 405.
// An optional shared token guards all but /healthz (the kubelet's probe).
// Thread-safe: handlers only read the published snapshot.
#pragma once

#include <functional>
#include <string>

#include "api/http_listener.h"
#include "api/router.h"
#include "common/result.h"
#include "model/gpu_snapshot.h"
#include "telemetry/metrics_exporter.h"

namespace sandman {

struct AgentApiOptions {
  std::string node;
  std::string token;  // empty: no token asked
  HttpLimits limits;
};

class AgentApi {
 public:
  AgentApi(AgentApiOptions options, std::function<SnapshotPtr()> latest, const MetricsExporter& metrics);
  Status bind(const std::string& host, int port) { return listener_.bind(host, port); }
  int port() const { return listener_.port(); }
  void serve() { listener_.serve(); }
  void stop() { listener_.stop(); }
  // One parsed request: auth, routing, errors (the listener's handler; tests call it directly).
  void handle(ApiRequest& req, ApiResponse& res);

 private:
  void snapshot(ApiResponse& res) const;

  const AgentApiOptions options_;
  const std::function<SnapshotPtr()> latest_;
  const MetricsExporter& metrics_;
  Router router_;
  HttpListener listener_;
};

}  // namespace sandman

#include "telemetry/cluster_telemetry.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/log.h"

namespace sandman {

ClusterTelemetry::ClusterTelemetry(ClusterTelemetryOptions options, KubeClient& client, const PodCache& sessions,
                                   const Clock& clock, Fetch fetch)
    : options_(std::move(options)),
      sessions_(sessions),
      clock_(clock),
      fetch_(std::move(fetch)),
      agents_(std::make_unique<PodCache>(client, options_.agent_namespace, options_.agent_selector)),
      fleet_(options_.fleet) {
  if (!fetch_) fetch_ = [this](const std::string& address) { return httpFetch(address); };
}

ClusterTelemetry::~ClusterTelemetry() { stop(); }

Status ClusterTelemetry::start(Millis sync_timeout) {
  agents_->start();
  if (!agents_->waitSynced(sync_timeout)) {
    const std::string why = agents_->stats().last_error;
    return unavailable("cannot list the node agents' pods (namespace " + options_.agent_namespace + ", selector " +
                       options_.agent_selector + ")" + (why.empty() ? "" : ": " + why));
  }
  return Status();
}

void ClusterTelemetry::stop() { agents_->stop(); }

Result<std::string> ClusterTelemetry::httpFetch(const std::string& address) const {
  HttpRequest req;
  req.url = "http://" + address + "/api/v1/agent/snapshot";
  req.timeout_ms = static_cast<long>(options_.poll_timeout.count());
  if (!options_.token.empty()) req.headers.push_back("Authorization: Bearer " + options_.token);
  auto res = http_.send(req);
  if (!res.ok()) return res.error();
  if (res->status != 200) {
    std::string why = res->body.substr(0, 200);
    return unavailable("HTTP " + std::to_string(res->status) + (why.empty() ? "" : ": " + why));
  }
  return std::move(res->body);
}

TelemetrySnapshot ClusterTelemetry::collect() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!agents_->waitSynced(Millis(0))) {
    TelemetrySnapshot snap;
    snap.cluster = true;
    snap.backend_ok = false;
    const std::string why = agents_->stats().last_error;
    snap.backend_error = "the node agents' pods are not listed yet" + (why.empty() ? "" : ": " + why);
    return snap;
  }
  const std::vector<AgentTarget> targets =
      agentTargets(agents_->list(), options_.port_annotation, options_.default_port);
  std::vector<const AgentTarget*> reachable;
  for (const auto& t : targets) {
    if (!t.address.empty()) reachable.push_back(&t);
  }
  // Polls in parallel, so one unreachable node costs the cycle one timeout,
  // not one per node.
  std::vector<AgentPoll> answers(reachable.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next.fetch_add(1); i < reachable.size(); i = next.fetch_add(1)) {
      auto body = fetch_(reachable[i]->address);
      if (!body.ok()) {
        answers[i].error = body.error().message;
        continue;
      }
      auto parsed = parseAgentSnapshot(body.value());
      if (!parsed.ok()) {
        answers[i].error = parsed.error().message;
        continue;
      }
      answers[i].snapshot = std::move(parsed).value();
    }
  };
  const size_t n = std::min<size_t>(reachable.size(), static_cast<size_t>(std::max(1, options_.max_parallel)));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
  if (n > 0) worker();
  for (auto& t : threads) t.join();

  std::map<std::string, AgentPoll> polls;
  for (size_t i = 0; i < reachable.size(); ++i) polls[reachable[i]->node] = std::move(answers[i]);
  TelemetrySnapshot snap = fleet_.merge(targets, polls, sessionPodRefs(sessions_.list()), clock_.now());
  // Transitions only: a missing agent is logged once, not every cycle.
  std::map<std::string, bool> now_up;
  for (const auto& r : snap.nodes) {
    now_up[r.node] = r.up;
    auto was = was_up_.find(r.node);
    if (r.up && (was == was_up_.end() || !was->second)) {
      logInfo("node agent answering", {{"node", r.node}, {"agent", r.agent_pod}, {"address", r.address},
                                       {"gpus", std::to_string(r.gpus)}, {"instances", std::to_string(r.instances)}});
    } else if (!r.up && (was == was_up_.end() || was->second)) {
      logWarn("node agent missing: the node's GPUs are unobserved", {{"node", r.node}, {"agent", r.agent_pod},
                                                                   {"error", r.error}});
    }
  }
  was_up_ = std::move(now_up);
  return snap;
}

}  // namespace sandman

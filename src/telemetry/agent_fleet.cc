#include "telemetry/agent_fleet.h"

#include <algorithm>
#include <charconv>
#include <set>

namespace sandman {
namespace {

int64_t unixMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

bool parsePort(const std::string& s, int* port) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < 1 || v > 65535) return false;
  *port = v;
  return true;
}

// Ready beats not ready; then the name, so the choice is stable between cycles.
bool better(const PodView& a, const PodView& b) {
  if (podServing(a) != podServing(b)) return podServing(a);
  return a.name < b.name;
}

}  // namespace

std::vector<AgentTarget> agentTargets(const std::vector<PodView>& pods, const std::string& port_annotation,
                                      int default_port) {
  std::map<std::string, const PodView*> best;
  for (const auto& p : pods) {
    if (p.node_name.empty()) continue;
    auto [it, added] = best.insert({p.node_name, &p});
    if (!added && better(p, *it->second)) it->second = &p;
  }
  std::vector<AgentTarget> out;
  for (const auto& [node, p] : best) {
    AgentTarget t{node, p->name, "", ""};
    int port = default_port;
    auto ann = p->annotations.find(port_annotation);
    if (p->deleting) {
      t.problem = "agent pod " + p->name + " is being deleted";
    } else if (p->phase != "Running") {
      t.problem = "agent pod " + p->name + " is " + (p->phase.empty() ? "Pending" : p->phase);
    } else if (p->pod_ip.empty()) {
      t.problem = "agent pod " + p->name + " has no pod IP";
    } else if (ann != p->annotations.end() && !parsePort(ann->second, &port)) {
      t.problem = "agent pod " + p->name + ": bad " + port_annotation + " annotation '" + ann->second + "'";
    } else {
      const bool v6 = p->pod_ip.find(':') != std::string::npos;
      t.address = (v6 ? "[" + p->pod_ip + "]" : p->pod_ip) + ":" + std::to_string(port);
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<SessionPodRef> sessionPodRefs(const std::vector<PodView>& pods, const std::string& prefix) {
  std::vector<SessionPodRef> out;
  for (const auto& p : pods) {
    if (p.name.size() <= prefix.size() || p.name.compare(0, prefix.size(), prefix) != 0) continue;
    out.push_back({p.name.substr(prefix.size()), p.uid, p.node_name});
  }
  return out;
}

TelemetrySnapshot AgentFleet::merge(const std::vector<AgentTarget>& targets,
                                    const std::map<std::string, AgentPoll>& polls,
                                    const std::vector<SessionPodRef>& sessions, TimePoint now) {
  TelemetrySnapshot snap;
  snap.cluster = true;
  std::map<std::string, std::string> session_of_uid;
  for (const auto& s : sessions) {
    if (!s.uid.empty()) session_of_uid[s.uid] = s.session_id;
    // A node running one of our sessions is a GPU node to watch, agent or not.
    if (!s.node.empty()) nodes_[s.node].last_listed = now;
  }

  std::map<std::string, NodeReading> readings;
  for (const auto& t : targets) {
    nodes_[t.node].last_listed = now;
    NodeReading r;
    r.node = t.node;
    r.agent_pod = t.pod;
    r.address = t.address;
    r.error = t.problem;
    if (!t.address.empty()) {
      auto p = polls.find(t.node);
      if (p == polls.end()) {
        r.error = "not polled";
      } else if (!p->second.snapshot) {
        r.error = p->second.error;
      } else if (p->second.snapshot->node != t.node) {
        // A pod IP reused by another node's agent: its data is not this node's.
        r.error = "the agent at " + t.address + " speaks for node " + p->second.snapshot->node;
      } else {
        const TelemetrySnapshot& got = p->second.snapshot->telemetry;
        Known& k = nodes_[t.node];
        const int64_t taken = unixMs(got.taken_at);
        if (taken != k.last_taken_ms) {
          k.last_taken_ms = taken;
          k.taken_changed_at = now;
        }
        if (!got.backend_ok) {
          r.error = "NVML failed on the node: " + got.backend_error;
        } else if (now - k.taken_changed_at > options_.stale_after) {
          r.error = "stale: the agent's last sample is " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - k.taken_changed_at).count()) +
                    " s old";
        } else {
          r.up = true;
          k.last_seen = now;
          auto take = [&](const std::vector<DeviceReading>& from, std::vector<DeviceReading>* to) {
            for (DeviceReading d : from) {
              d.node = t.node;
              auto s = session_of_uid.find(d.pod_uid);
              d.session_id = s != session_of_uid.end() && !d.pod_uid.empty() ? s->second : "";
              d.user_id.clear();
              to->push_back(std::move(d));
            }
          };
          take(got.gpus, &snap.gpus);
          take(got.instances, &snap.instances);
          r.gpus = static_cast<int>(got.gpus.size());
          r.instances = static_cast<int>(got.instances.size());
        }
      }
    }
    readings[t.node] = std::move(r);
  }

  // Nodes known from earlier cycles (or running sessions) without an agent now.
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (readings.count(it->first) == 0) {
      if (now - it->second.last_listed > options_.forget_after) {
        it = nodes_.erase(it);
        continue;
      }
      NodeReading r;
      r.node = it->first;
      r.error = "no agent pod on the node";
      readings[it->first] = std::move(r);
    }
    readings[it->first].last_seen = it->second.last_seen;
    ++it;
  }

  int up = 0;
  std::set<std::string> silent;
  for (auto& [node, r] : readings) {
    if (r.up) {
      ++up;
    } else {
      silent.insert(node);
    }
    snap.nodes.push_back(std::move(r));
  }
  for (const auto& s : sessions) {
    if (!s.node.empty() && silent.count(s.node) != 0) snap.unobserved_sessions.push_back(s.session_id);
  }
  std::sort(snap.unobserved_sessions.begin(), snap.unobserved_sessions.end());
  if (!snap.nodes.empty() && up == 0) {
    // Nothing is known: alerts and the idle policy must not read an empty
    // cluster as idle GPUs.
    snap.backend_ok = false;
    snap.backend_error = "no node agent answered (" + std::to_string(snap.nodes.size()) + " node(s) missing)";
    snap.gpus.clear();
    snap.instances.clear();
  }
  auto order = [](const DeviceReading& a, const DeviceReading& b) {
    if (a.node != b.node) return a.node < b.node;
    if (a.gpu_index != b.gpu_index) return a.gpu_index < b.gpu_index;
    return a.gpu_instance_id < b.gpu_instance_id;
  };
  std::stable_sort(snap.gpus.begin(), snap.gpus.end(), order);
  std::stable_sort(snap.instances.begin(), snap.instances.end(), order);
  return snap;
}

}  // namespace sandman

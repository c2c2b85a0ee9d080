#include "core/mig_layouts.h"

#include <algorithm>
#include <cctype>

#include "common/log.h"

namespace sandman {
namespace {

std::string holdReason(const MigLayoutProposal& p) {
  if (p.state == "failed") {
    return "MIG layout " + p.config + " failed (proposal " + std::to_string(p.id) +
           "): held until an admin releases the node or approves another layout";
  }
  return "MIG layout " + p.config + " being applied (proposal " + std::to_string(p.id) + ")";
}

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

}  // namespace

bool validMigConfigName(const std::string& s) {
  if (s.empty() || s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

MigLayouts::MigLayouts(KubeClient& client, const NodeCache& nodes, const PodCache& pods, MigLayoutStore& store,
                       const Clock& clock, MigLayoutOptions options)
    : client_(client), nodes_(nodes), pods_(pods), store_(store), clock_(clock), options_(options) {}

MigLayouts::~MigLayouts() { stop(); }

Status MigLayouts::start() {
  auto rows = store_.inStates({"applying", "pending", "failed"});
  if (!rows.ok()) return rows.error();
  {
    std::lock_guard lock(mu_);
    for (const auto& p : rows.value()) {
      holds_[p.node] = holdReason(p);
      if (migProposalInFlight(p.state)) flight_[p.node] = p;
    }
  }
  for (const auto& p : rows.value()) {
    // What the MIG manager reported while this daemon was away.
    if (migProposalInFlight(p.state)) onNode(p.node, nodes_.get(p.node));
  }
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  return {};
}

void MigLayouts::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

NodeHolds MigLayouts::holds() const {
  std::lock_guard lock(mu_);
  return holds_;
}

std::vector<std::string> MigLayouts::heldNodes() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [node, _] : holds_) out.push_back(node);
  return out;
}

Status MigLayouts::save(MigLayoutProposal& p, const std::string& state, const std::string& message) {
  p.state = state;
  p.message = message;
  p.updated_at = clock_.now();
  Status st = store_.update(p);
  logInfo("mig_layout", {{"proposal", std::to_string(p.id)}, {"node", p.node}, {"config", p.config},
                         {"state", state}, {"message", message}});
  return st;
}

// Ends an in-flight change; mu_ is held by the caller.
void MigLayouts::finish(MigLayoutProposal p, const std::string& state, const std::string& message) {
  if (Status st = save(p, state, message); !st.ok()) {
    logWarn("mig_layout_store_error", {{"proposal", std::to_string(p.id)}, {"error", st.error().message}});
  }
  flight_.erase(p.node);
  if (state == "applied") holds_.erase(p.node);
  else holds_[p.node] = holdReason(p);
}

void MigLayouts::onNode(const std::string& name, const std::optional<NodeView>& node) {
  std::lock_guard lock(mu_);
  auto it = flight_.find(name);
  if (it == flight_.end() || !node) return;
  MigLayoutProposal& p = it->second;
  if (node->mig_config != p.config) {
    // While "applying", an event from before Sandman's own write still shows the old label.
    if (p.state == "pending") {
      finish(p, "failed", "the node's nvidia.com/mig.config was changed to '" + node->mig_config +
                              "' by someone else while the layout was being applied");
    }
    return;
  }
  // Only a "pending" seen after the label was set proves the MIG manager took
  // this change up: a success or failed before it is the previous change's.
  if (p.state == "applying" && node->mig_config_state == "pending") {
    if (Status st = save(p, "pending", "the GPU operator's MIG manager is applying it"); !st.ok()) {
      logWarn("mig_layout_store_error", {{"proposal", std::to_string(p.id)}, {"error", st.error().message}});
    }
  } else if (p.state == "pending" && node->mig_config_state == "success") {
    finish(p, "applied", "the GPU operator's MIG manager reports success; the node takes sessions again");
  } else if (p.state == "pending" && node->mig_config_state == "failed") {
    finish(p, "failed",
           "the GPU operator's MIG manager reports failed (see its logs on the node); the node stays held");
  }
}

void MigLayouts::run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
    if (stop_) break;
    const TimePoint now = clock_.now();
    std::vector<MigLayoutProposal> late;
    for (const auto& [node, p] : flight_) {
      if (now - p.updated_at > options_.operator_timeout) late.push_back(p);
    }
    for (const auto& p : late) {
      finish(p, "failed", std::string("the GPU operator's MIG manager did not ") +
                              (p.state == "applying" ? "take the change up (no pending state)" : "finish") +
                              " in time; the node stays held");
    }
  }
}

Result<MigLayoutProposal> MigLayouts::latest(const std::string& node) {
  auto rows = store_.list(node, 1);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return notFound("no MIG layout proposal for node " + node);
  return rows->front();
}

Result<MigLayoutProposal> MigLayouts::propose(const std::string& node, const std::string& config,
                                              const std::string& by) {
  if (!validMigConfigName(config)) {
    return invalid("config must be a name from the GPU operator's MIG config (e.g. all-1g.10gb, all-balanced, "
                   "all-disabled): 1 to 63 letters, digits, '-', '_' or '.'");
  }
  auto view = nodes_.get(node);
  if (!view) return notFound("no node " + node);
  if (!isGpuNode(*view)) return invalid("node " + node + " has no NVIDIA GPUs (no nvidia.com/ capacity or labels)");
  if (!view->mig_capable && view->mig_profiles.empty()) {
    return invalid("node " + node + "'s GPUs cannot be partitioned (nvidia.com/mig.capable is not true)");
  }
  std::lock_guard serial(approve_mu_);
  auto prev = latest(node);
  if (prev.ok() && migProposalInFlight(prev->state)) {
    return conflict("node " + node + " is already changing to " + prev->config + " (proposal " +
                    std::to_string(prev->id) + ", " + prev->state + "); wait for it to end");
  }
  if (view->mig_config == config && view->mig_config_state == "success") {
    return conflict("node " + node + " already has MIG layout " + config);
  }
  MigLayoutProposal p;
  p.node = node;
  p.config = config;
  p.state = "proposed";
  p.message = "awaiting an admin's approval";
  p.previous_config = view->mig_config;
  p.proposed_by = by;
  p.created_at = p.updated_at = clock_.now();
  auto id = store_.insert(p);
  if (!id.ok()) return id.error();
  p.id = id.value();
  if (prev.ok() && prev->state == "proposed") {
    MigLayoutProposal old = prev.value();
    (void)save(old, "superseded", "superseded by proposal " + std::to_string(p.id));
  }
  logInfo("mig_layout", {{"proposal", std::to_string(p.id)}, {"node", node}, {"config", config},
                         {"state", "proposed"}, {"by", by}});
  return p;
}

Result<MigLayoutProposal> MigLayouts::approve(const std::string& node, const std::string& by) {
  std::lock_guard serial(approve_mu_);
  auto found = latest(node);
  if (!found.ok()) return found.error();
  MigLayoutProposal p = found.value();
  if (p.state != "proposed") {
    return conflict("node " + node + " has no proposal awaiting approval (the latest, " + std::to_string(p.id) +
                    ", is " + p.state + "); propose a layout first");
  }
  if (!nodes_.get(node)) return notFound("no node " + node);
  std::string previous_hold;
  {
    std::lock_guard lock(mu_);
    if (auto h = holds_.find(node); h != holds_.end()) previous_hold = h->second;
    holds_[node] = "MIG layout " + p.config + " approved (proposal " + std::to_string(p.id) + "): checking sessions";
  }
  auto let_go = [&] {
    std::lock_guard lock(mu_);
    if (previous_hold.empty()) holds_.erase(node);
    else holds_[node] = previous_hold;
  };
  // From here launches keep off the node. A launch that read the holds just
  // before is given a moment to show up in the cache, and unscheduled pods of
  // this daemon one to land (maybe here).
  const auto settle_until = std::chrono::steady_clock::now() + options_.settle;
  const auto min_until = std::chrono::steady_clock::now() + std::min<Millis>(options_.settle, Millis(1000));
  for (;;) {
    uint64_t gen = pods_.generation();
    bool unbound = false;
    for (const auto& pod : pods_.list()) {
      if (pod.node_name.empty() && pod.phase == "Pending" && !pod.deleting) unbound = true;
    }
    auto now = std::chrono::steady_clock::now();
    if ((!unbound && now >= min_until) || now >= settle_until) break;
    pods_.waitForChange(gen, Millis(200));
  }
  std::vector<std::string> sessions;
  for (const auto& pod : pods_.list()) {
    if (pod.node_name != node || pod.phase == "Succeeded" || pod.phase == "Failed") continue;
    auto sid = pod.labels.find("sandman.io/session");
    sessions.push_back(sid != pod.labels.end() ? sid->second : pod.name);
  }
  if (!sessions.empty()) {
    let_go();
    std::string list;
    for (const auto& s : sessions) list += (list.empty() ? "" : ", ") + s;
    return conflict("node " + node + " still runs " + std::to_string(sessions.size()) + " Sandman session" +
                    (sessions.size() == 1 ? "" : "s") + " holding its GPUs (" + list +
                    "); stop them or let them end, then approve again (proposal " + std::to_string(p.id) +
                    " stays proposed)");
  }
  p.approved_by = by;
  // Stored before the label is written: a daemon that dies in between still holds the node when it comes back.
  if (Status st = save(p, "applying", "node held; nvidia.com/mig.config set; waiting for the GPU operator's MIG "
                                      "manager to take it up");
      !st.ok()) {
    let_go();
    return st.error();
  }
  {
    std::lock_guard lock(mu_);
    flight_[node] = p;
    holds_[node] = holdReason(p);
  }
  nlohmann::json patch = {{"metadata", {{"labels", {{kMigConfigLabel, p.config}}}}}};
  auto r = client_.patchMerge("/api/v1/nodes/" + urlEncode(node), patch);
  Error failure{ErrorKind::kUnavailable, ""};
  if (!r.ok()) {
    failure = r.error();
  } else if (r->status != 200) {
    failure = Error{ErrorKind::kUnavailable,
                    "cannot label node " + node + ": " + r->message() +
                        (r->status == 403 ? " (the ClusterRole sandman-node-labels grants patch on nodes)" : "")};
  }
  if (!failure.message.empty()) {
    {
      std::lock_guard lock(mu_);
      flight_.erase(node);
    }
    let_go();
    (void)save(p, "proposed", "approval failed: " + failure.message);
    return failure;
  }
  // Earlier failed changes of this node no longer hold it: this one does.
  if (auto failed = store_.inStates({"failed"}); failed.ok()) {
    for (auto old : failed.value()) {
      if (old.node == node) (void)save(old, "superseded", "superseded by proposal " + std::to_string(p.id));
    }
  }
  // The watch may have delivered the MIG manager's first reaction before flight_ held the change.
  onNode(node, nodes_.get(node));
  std::lock_guard lock(mu_);
  auto it = flight_.find(node);
  return it != flight_.end() ? it->second : p;
}

Result<MigLayoutProposal> MigLayouts::release(const std::string& node, const std::string& by) {
  std::lock_guard serial(approve_mu_);
  auto found = latest(node);
  if (!found.ok()) return found.error();
  MigLayoutProposal p = found.value();
  if (p.state == "proposed") {
    if (Status st = save(p, "withdrawn", "withdrawn by " + by); !st.ok()) return st.error();
    return p;
  }
  if (p.state == "failed") {
    if (Status st = save(p, "released", "node released by " + by + " after the failed change"); !st.ok()) {
      return st.error();
    }
    std::lock_guard lock(mu_);
    holds_.erase(node);
    return p;
  }
  if (migProposalInFlight(p.state)) {
    return conflict("node " + node + "'s change to " + p.config + " is " + p.state +
                    "; the GPU operator's MIG manager decides how it ends");
  }
  return conflict("node " + node + " has nothing to withdraw or release (latest proposal " + std::to_string(p.id) +
                  " is " + p.state + ")");
}

Result<std::vector<MigLayoutProposal>> MigLayouts::list(const std::string& node, size_t limit) {
  return store_.list(node, limit);
}

}  // namespace sandman

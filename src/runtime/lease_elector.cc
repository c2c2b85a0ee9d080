#include "runtime/lease_elector.h"

#include <cstdio>
#include <ctime>
#include <random>

#include "common/log.h"

namespace sandman {
namespace {

using json = nlohmann::json;

std::string text(const json& j, const json::json_pointer& at) {
  if (!j.contains(at)) return "";
  const json& v = j.at(at);
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t number(const json& j, const json::json_pointer& at) {
  if (!j.contains(at)) return 0;
  const json& v = j.at(at);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

}  // namespace

std::string leaseIdentity(const std::string& host_name) {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return (host_name.empty() ? std::string("sandman") : host_name) + "_" + buf;
}

std::string formatMicroTime(TimePoint t) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const time_t secs = static_cast<time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];  // sized for any int, so no truncation warning
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
  return buf;
}

LeaseApi LeaseApi::over(KubeClient& client) {
  LeaseApi api;
  api.get = [&client](const std::string& path) { return client.get(path); };
  api.create = [&client](const std::string& collection, const json& object) {
    return client.create(collection, object);
  };
  api.replace = [&client](const std::string& path, const json& object) { return client.replace(path, object); };
  return api;
}

LeaseElector::LeaseElector(LeaseApi api, LeaseElectorOptions options, const Clock& clock)
    : api_(std::move(api)), options_(std::move(options)), clock_(clock) {}

LeaseElector::~LeaseElector() { stop(false); }

void LeaseElector::setListener(std::function<void(bool)> fn) { listener_ = std::move(fn); }

std::string LeaseElector::leasePath() const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + options_.ns + "/leases/" + options_.name;
}

bool LeaseElector::isLeader() const {
  std::lock_guard lock(mu_);
  return leading_ && clock_.now() - last_renew_ < options_.renew_deadline;
}

uint64_t LeaseElector::term() const {
  std::lock_guard lock(mu_);
  return term_;
}

LeaderView LeaseElector::leader() const {
  const bool self = isLeader();
  std::lock_guard lock(mu_);
  LeaderView v;
  v.self = self;
  v.holder = observed_holder_;
  v.annotations = observed_annotations_;
  v.transitions = observed_transitions_;
  return v;
}

// Only a change of the record restarts the wait: the holder's renewTime is
// compared as text, never against this daemon's clock.
void LeaseElector::observe(const json& lease, TimePoint now) {
  const std::string holder = text(lease, "/spec/holderIdentity"_json_pointer);
  const std::string renew = text(lease, "/spec/renewTime"_json_pointer);
  const int64_t transitions = number(lease, "/spec/leaseTransitions"_json_pointer);
  if (!observed_any_ || holder != observed_holder_ || renew != observed_renew_ ||
      transitions != observed_transitions_) {
    observed_at_ = now;
  }
  observed_any_ = true;
  observed_holder_ = holder;
  observed_renew_ = renew;
  observed_transitions_ = transitions;
  const int64_t secs = number(lease, "/spec/leaseDurationSeconds"_json_pointer);
  observed_duration_ = secs > 0 ? Millis(secs * 1000) : options_.lease_duration;
  observed_annotations_.clear();
  if (lease.contains("/metadata/annotations"_json_pointer) && lease["metadata"]["annotations"].is_object()) {
    for (const auto& [k, v] : lease["metadata"]["annotations"].items()) {
      if (v.is_string()) observed_annotations_[k] = v.get<std::string>();
    }
  }
  last_lease_ = lease;
}

json LeaseElector::leaseBody(const json& base, bool take_over, int64_t transitions) const {
  json lease = base;
  lease.erase("status");
  if (lease.contains("metadata")) lease["metadata"].erase("managedFields");
  const std::string now = formatMicroTime(clock_.now());
  json& spec = lease["spec"];
  if (!spec.is_object()) spec = json::object();
  spec["holderIdentity"] = options_.identity;
  spec["leaseDurationSeconds"] =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count());
  spec["renewTime"] = now;
  if (take_over || !spec.contains("acquireTime")) spec["acquireTime"] = now;
  spec["leaseTransitions"] = transitions;
  json& annotations = lease["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = json::object();
  for (const auto& [k, v] : options_.annotations) annotations[k] = v;
  return lease;
}

void LeaseElector::setLeading(bool leading, TimePoint, std::unique_lock<std::mutex>& lock) {
  if (leading == leading_) return;
  leading_ = leading;
  if (leading) ++term_;
  const int64_t transitions = observed_transitions_;
  lock.unlock();
  if (leading) {
    logInfo("leader election: this daemon leads", {{"lease", options_.ns + "/" + options_.name},
                                                    {"identity", options_.identity},
                                                    {"transitions", std::to_string(transitions)}});
  } else {
    logWarn("leader election: this daemon no longer leads; it stops mutating sessions",
            {{"lease", options_.ns + "/" + options_.name}, {"identity", options_.identity}});
  }
  if (listener_) listener_(leading);
  lock.lock();
}

void LeaseElector::tick() {
  auto got = api_.get(leasePath());
  const TimePoint now = clock_.now();
  std::unique_lock lock(mu_);
  // A leader that cannot reach the lease keeps leading only until its deadline.
  auto failed = [&](const std::string& why) {
    if (leading_ && clock_.now() - last_renew_ >= options_.renew_deadline) {
      logWarn("leader election: cannot renew the lease", {{"error", why}});
      setLeading(false, clock_.now(), lock);
    }
  };
  if (!got.ok()) return failed(got.error().message);
  // Past the deadline this daemon stopped mutating; leading again, even on
  // the same lease, is a new term (whoever re-syncs per term does so).
  if (leading_ && now - last_renew_ >= options_.renew_deadline) setLeading(false, now, lock);
  if (got->status == 404) {
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}}};
    lease = leaseBody(lease, true, 0);
    lock.unlock();
    auto made = api_.create("/apis/coordination.k8s.io/v1/namespaces/" + options_.ns + "/leases", lease);
    lock.lock();
    // 409: another replica created it first; the next round reads it.
    if (!made.ok() || (made->status != 201 && made->status != 200)) {
      return failed(made.ok() ? made->message() : made.error().message);
    }
    observe(made->body, clock_.now());
    last_renew_ = now;
    return setLeading(true, now, lock);
  }
  if (got->status != 200) return failed(got->message());
  observe(got->body, now);
  const bool mine = observed_holder_ == options_.identity;
  if (!mine && leading_) setLeading(false, now, lock);
  const bool free = observed_holder_.empty() || now - observed_at_ >= observed_duration_;
  if (!mine && !free) return;
  // Renew ours, or take over a lease nobody renewed for its whole duration
  // (as seen here): an UPDATE with the resourceVersion just read, so of two
  // replicas taking over at once exactly one succeeds.
  const json body = leaseBody(last_lease_, !mine, mine ? observed_transitions_ : observed_transitions_ + 1);
  const TimePoint sent = clock_.now();
  lock.unlock();
  auto put = api_.replace(leasePath(), body);
  lock.lock();
  if (!put.ok() || put->status != 200) {
    if (put.ok() && put->status == 409 && !mine) return;  // another replica won the takeover
    return failed(put.ok() ? put->message() : put.error().message);
  }
  observe(put->body, clock_.now());
  last_renew_ = sent;  // the renewal counts from when it was sent, not answered
  setLeading(true, sent, lock);
}

TimePoint LeaseElector::nextTick() const {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_.now();
  TimePoint next = now + options_.renew_period;
  if (!leading_ && observed_any_ && !observed_holder_.empty() && observed_holder_ != options_.identity) {
    const TimePoint free_at = observed_at_ + observed_duration_ + Millis(1);
    if (free_at < next) next = std::max(free_at, now);
  }
  return next;
}

void LeaseElector::start() {
  thread_ = std::thread([this] {
    for (;;) {
      tick();
      const TimePoint next = nextTick();
      std::unique_lock lock(mu_);
      if (clock_.waitUntil(lock, cv_, next, [this] { return stop_; })) return;
    }
  });
}

void LeaseElector::stop(bool release) {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!release || !isLeader()) return;
  std::unique_lock lock(mu_);
  json lease = last_lease_;
  lease.erase("status");
  if (lease.contains("metadata")) lease["metadata"].erase("managedFields");
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = formatMicroTime(clock_.now());
  if (lease["metadata"].contains("annotations") && lease["metadata"]["annotations"].is_object()) {
    for (const auto& [k, v] : options_.annotations) lease["metadata"]["annotations"].erase(k);
  }
  leading_ = false;  // mutations end before the lease is handed back
  lock.unlock();
  auto put = api_.replace(leasePath(), lease);
  if (put.ok() && put->status == 200) {
    logInfo("leader election: lease released", {{"lease", options_.ns + "/" + options_.name}});
  } else {
    logWarn("leader election: cannot release the lease; the other replica takes over when it expires",
            {{"error", put.ok() ? put->message() : put.error().message}});
  }
}

}  // namespace sandman

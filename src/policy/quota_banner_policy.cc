#include "policy/quota_banner_policy.h"

#include "common/log.h"
#include "workspace/quota_notice.h"

namespace sandman {

void QuotaBannerPolicy::onSample(const TelemetrySnapshot& snap) {
  if (quota_bytes_ == 0) return;
  std::set<std::string> over;
  for (const auto& w : snap.disk.workspaces) {
    if (w.used_bytes >= quota_bytes_) over.insert(w.user_id);
  }
  std::set<std::string> changed;
  for (const auto& u : over) {
    if (over_.count(u) == 0) changed.insert(u);
  }
  for (const auto& u : over_) {
    if (over.count(u) == 0) changed.insert(u);
  }
  if (changed.empty()) return;
  auto active = store_.activeSessions();
  if (!active.ok()) return;  // over_ stays as it was: retried next sample
  for (const auto& s : active.value()) {
    if (changed.count(s.user_id) == 0) continue;
    auto account = store_.getUser(s.user_id);
    if (!account.ok()) continue;
    const std::string text = quotaBanner(quota_bytes_, enforced_, monitor_.get(s.user_id));
    if (Status st = files_.writeBanner(s.id, account.value(), text); !st.ok()) {
      logWarn("quota banner not updated", {{"session", s.id}, {"user", s.user_id}, {"error", st.error().message}});
      continue;
    }
    logInfo(over.count(s.user_id) != 0 ? "workspace at its quota: login banner says so"
                                        : "workspace back under its quota: login banner updated",
            {{"session", s.id}, {"user", s.user_id}});
  }
  over_ = std::move(over);
}

}  // namespace sandman

// QuotaBannerPolicy: keeps the pre-login banner of running sessions in step
// with their workspace: when a workspace reaches its quota, or drops back
// under it, the banner file of its user's active session is rewritten, so the
// next login says so. Not thread-safe: onSample runs on the sampler thread.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "ssh/sshd_files.h"
#include "store/store.h"
#include "model/gpu_snapshot.h"
#include "workspace/workspace_usage.h"

namespace sandman {

class QuotaBannerPolicy {
 public:
  QuotaBannerPolicy(Store& store, const SshdFiles& files, const WorkspaceUsageMonitor& monitor, uint64_t quota_bytes,
                    bool enforced)
      : store_(store), files_(files), monitor_(monitor), quota_bytes_(quota_bytes), enforced_(enforced) {}

  // Rewrites banners of users whose over-quota state changed since the last
  // sample (one store read per change, nothing otherwise).
  void onSample(const TelemetrySnapshot& snap);

 private:
  Store& store_;
  const SshdFiles& files_;
  const WorkspaceUsageMonitor& monitor_;
  const uint64_t quota_bytes_;
  const bool enforced_;
  std::set<std::string> over_;  // users at or over their quota at the last sample
};

}  // namespace sandman

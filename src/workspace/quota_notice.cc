#include "workspace/quota_notice.h"

#include "workspace/disk_space.h"

namespace sandman {

std::string quotaBanner(uint64_t quota_bytes, bool enforced, const std::optional<WorkspaceUsage>& usage) {
  if (quota_bytes == 0) return {};
  const std::string quota = formatBytes(quota_bytes);
  const bool over = usage && usage->overQuota(quota_bytes);
  const std::string held = usage && usage->measured ? formatBytes(usage->used_bytes) : std::string();
  if (enforced) {
    if (!over) return {};
    return "Sandman: /workspace holds " + held + " and has reached its " + quota +
           " quota: writes there fail until you delete files.\n";
  }
  if (over) {
    return "Sandman: /workspace holds " + held + ", over its " + quota +
           " quota (not enforced on this host): please delete files you do not need; the admin has been alerted.\n";
  }
  return "Sandman: /workspace has a " + quota + " quota that this host cannot enforce" +
         (held.empty() ? std::string() : " (it holds " + held + ")") + "; please stay under it.\n";
}

}  // namespace sandman

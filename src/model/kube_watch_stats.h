// KubeWatchStats: the Kubernetes backend's pod watch cache, as /metrics reads it.
// A plain value here, so telemetry can render it without depending on the runtime.
#pragma once

#include <cstdint>

namespace sandman {

// Totals count since the daemon started.
struct KubeWatchStats {
  uint64_t pods = 0;                      // session pods the cache holds
  bool synced = false;                    // a list has completed: reads answer from the cache
  uint64_t lists_total = 0;               // full lists (the first, then relists)
  uint64_t watches_total = 0;             // watch requests opened
  uint64_t relists_after_gone_total = 0;  // 410 Gone: the resourceVersion expired, relisted
  uint64_t errors_total = 0;              // lists or watches that failed (transport, 5xx, ...)
  uint64_t cache_bytes = 0;               // approximate bytes the cached pod views hold
};

}  // namespace sandman

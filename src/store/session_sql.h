// SQL fragments about sessions that several of the store's files paste into
// their statements (fixed text only; values are always bound). Internal to store/.
#pragma once

// Must list exactly the statuses for which isActive() is true; it is pasted
// into the partial unique indexes and into the queries that should use them.
#define SANDMAN_ACTIVE_STATUSES "('pending','starting','running','stopping')"

// A session whose dynamic MIG instance was created and not yet released. The
// partial index sessions_holding_gpu is defined with exactly this text, and
// SQLite uses a partial index only for queries that repeat its terms.
#define SANDMAN_HOLDS_GPU \
  "json_extract(gpu_slot, '$.created') = 1 AND json_extract(gpu_slot, '$.released') = 0"

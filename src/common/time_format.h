// RFC 3339 timestamps (UTC, millisecond precision) for the API and the store.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/clock.h"

namespace sandman {

std::string formatRfc3339(TimePoint t);                   // 2026-11-23T12:00:05.250Z
std::optional<TimePoint> parseRfc3339(const std::string& s);  // accepts what formatRfc3339 writes
int64_t toUnixMillis(TimePoint t);
TimePoint fromUnixMillis(int64_t ms);

}  // namespace sandman

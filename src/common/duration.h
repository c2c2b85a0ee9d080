// Durations as operators type them in flags and rule files: "500ms", "5s",
// "10m", "24h", "30d" (one number, one unit). Pure functions; thread-safe.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

// kInvalid naming the accepted units when s is not a duration or is negative.
Result<Millis> parseDuration(const std::string& s);
// The shortest exact form: 300000ms -> "5m", 90000ms -> "90s".
std::string formatDuration(Millis d);

}  // namespace sandman

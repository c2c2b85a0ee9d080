#include "common/duration.h"

#include <cctype>
#include <cstdint>
#include <limits>

namespace sandman {
namespace {

struct Unit {
  const char* name;
  int64_t ms;
};
constexpr Unit kUnits[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};

}  // namespace

Result<Millis> parseDuration(const std::string& s) {
  std::string hint = "'";  // built by appends: g++ 12 warns falsely (-Wrestrict) on "'" + std::string
  hint.append(s, 0, 32);
  hint += "' is not a duration (a whole number and a unit: ms, s, m, h or d, e.g. 5m)";
  size_t i = 0;
  int64_t n = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (n > std::numeric_limits<int64_t>::max() / 10 / 86400000) return invalid(hint);
    n = n * 10 + (s[i] - '0');
    ++i;
  }
  if (i == 0 || i == s.size()) return invalid(hint);
  std::string unit = s.substr(i);
  for (const Unit& u : kUnits) {
    if (unit == u.name) return Millis(n * u.ms);
  }
  return invalid(hint);
}

std::string formatDuration(Millis d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  for (const Unit& u : kUnits) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  }
  return std::to_string(ms) + "ms";
}

}  // namespace sandman

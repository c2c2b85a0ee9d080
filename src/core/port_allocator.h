// PortAllocator: picks the direct SSH port of a new session from the
// configured range. Pure rules; callers pass what the store and host say is
// taken. Thread-safe (no state but the range and a rotating start).
#pragma once

#include <atomic>
#include <functional>
#include <optional>
#include <set>

namespace sandman {

struct PortRange {
  int start = 10000;
  int end = 20000;  // inclusive
  int size() const { return end - start + 1; }
};

class PortAllocator {
 public:
  explicit PortAllocator(PortRange range) : range_(range) {}

  // The first port, scanning from a rotating cursor, that is in the range,
  // not in `in_use` and for which `usable` (e.g. a bind test) holds.
  // Rotating avoids handing a just-freed port straight to the next session,
  // so a stale known_hosts entry or a lingering proxy never meets a new user.
  std::optional<int> pick(const std::set<int>& in_use, const std::function<bool(int)>& usable);

  const PortRange& range() const { return range_; }

 private:
  PortRange range_;
  std::atomic<int> cursor_{0};
};

}  // namespace sandman

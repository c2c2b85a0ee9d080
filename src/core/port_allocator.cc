#include "core/port_allocator.h"

namespace sandman {

std::optional<int> PortAllocator::pick(const std::set<int>& in_use,
                                       const std::function<bool(int)>& usable) {
  const int n = range_.size();
  if (n <= 0) return std::nullopt;
  const int first = cursor_.load() % n;
  for (int i = 0; i < n; ++i) {
    int port = range_.start + (first + i) % n;
    if (in_use.count(port) || (usable && !usable(port))) continue;
    cursor_.store((first + i + 1) % n);
    return port;
  }
  return std::nullopt;
}

}  // namespace sandman

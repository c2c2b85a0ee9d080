#include "core/port_allocator.h"

#include <gtest/gtest.h>

namespace sandman {
namespace {

TEST(PortAllocator, SkipsPortsInUseAndUnusable) {
  PortAllocator a({10000, 10004});
  auto p = a.pick({10000, 10001}, [](int port) { return port != 10002; });
  ASSERT_TRUE(p);
  EXPECT_EQ(*p, 10003);
}

TEST(PortAllocator, NeverReturnsAPortInUse) {
  PortAllocator a({10000, 10009});
  std::set<int> used;
  for (int i = 0; i < 10; ++i) {
    auto p = a.pick(used, nullptr);
    ASSERT_TRUE(p);
    EXPECT_FALSE(used.count(*p));
    EXPECT_GE(*p, 10000);
    EXPECT_LE(*p, 10009);
    used.insert(*p);
  }
  EXPECT_FALSE(a.pick(used, nullptr)) << "a full range has no port to give";
}

TEST(PortAllocator, RotatesSoAFreedPortIsNotReusedAtOnce) {
  PortAllocator a({10000, 10009});
  auto first = a.pick({}, nullptr);
  auto second = a.pick({}, nullptr);  // `first` was released meanwhile
  ASSERT_TRUE(first && second);
  EXPECT_NE(*first, *second);
}

TEST(PortAllocator, SinglePortRange) {
  PortAllocator a({12345, 12345});
  EXPECT_EQ(a.pick({}, nullptr), 12345);
  EXPECT_FALSE(a.pick({12345}, nullptr));
}

}  // namespace
}  // namespace sandman

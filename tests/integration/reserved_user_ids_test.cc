// The shipped list of reserved user ids against the session image itself:
// every account and group in its /etc/passwd and /etc/group is refused as a
// user_id. Needs dockerd and sandman-workspace:latest (images/workspace/build.sh).
#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "core/validation.h"

namespace sandman {
namespace {

std::vector<std::string> namesIn(const std::string& file) {
  const char* env = std::getenv("SANDMAN_E2E_IMAGE");
  std::string image = env != nullptr && *env != '\0' ? env : "sandman-workspace:latest";
  std::string cmd = "docker run --rm --network none --entrypoint cat " + image + " " + file + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return {};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << cmd << ": " << out;
  std::vector<std::string> names;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) names.push_back(line.substr(0, line.find(':')));
  }
  return names;
}

TEST(ReservedUserIds, EveryAccountAndGroupOfTheSessionImageIsRefused) {
  for (const char* file : {"/etc/passwd", "/etc/group"}) {
    auto names = namesIn(file);
    ASSERT_GT(names.size(), 5u) << file;
    for (const auto& name : names) {
      EXPECT_TRUE(isReservedUserId(name)) << name << " (from the image's " << file << ") is not reserved";
      auto st = validateUserId(name);
      ASSERT_FALSE(st.ok()) << name;
      EXPECT_EQ(st.error().kind, ErrorKind::kInvalid);
    }
  }
}

}  // namespace
}  // namespace sandman

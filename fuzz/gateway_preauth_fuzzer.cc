// libFuzzer target for what the SSH gateway parses itself before
// authentication: the SSH user name (the routing key). The SSH wire format
// before auth is parsed by libssh, not by Sandman; the gateway integration
// test sends it garbage and truncated banners. Differential: the hand-written
// check must agree with the documented regular expression.
// Build (clang): clang++ -std=c++20 -fsanitize=fuzzer,address,undefined -Isrc
//   fuzz/gateway_preauth_fuzzer.cc src/gateway/user_name.cc
#include <cstdint>
#include <cstdlib>
#include <regex>
#include <string>

#include "gateway/user_name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::regex kUser("^[a-z_][a-z0-9_-]{0,31}$");
  std::string user(reinterpret_cast<const char*>(data), size);
  bool expected = user.find('\0') == std::string::npos && user.find('\n') == std::string::npos &&
                  std::regex_match(user, kUser);
  if (sandman::isValidGatewayUser(user) != expected) std::abort();
  return 0;
}

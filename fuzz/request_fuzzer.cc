// libFuzzer target for everything Sandman parses from outside before auth
// or validation: REST bodies, user ids, public key lines, and the SSH server
// hello read by the readiness probe. None may crash, hang or accept garbage.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/json_mapping.h"
#include "core/validation.h"
#include "ssh/keys.h"
#include "ssh/kexinit_probe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  (void)sandman::parseCreateRequest(input);
  if (sandman::validateUserId(input).ok() &&
      (input.find('/') != std::string::npos || input.find('.') != std::string::npos || input.size() > 32)) {
    std::abort();  // an id that could leave the workspace root was accepted
  }
  (void)sandman::parseTtlPatch(input);
  (void)sandman::parsePublicKeyLine(input);
  int hello = sandman::classifySshServerHello(input);
  if (hello < -1 || hello > 1) std::abort();
  return 0;
}

#include "common/fault_point.h"

#ifdef SANDMAN_FAULT_INJECTION
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace sandman {

void faultPoint(const char* name) {
  const char* armed = std::getenv("SANDMAN_FAULT_POINT");
  if (armed == nullptr || std::strcmp(armed, name) != 0) return;
  // write(2), not the logger: nothing buffered may soften the crash.
  std::string line = std::string("sandman-faults: fault point ") + name + " reached; killing the daemon\n";
  ssize_t n = write(STDERR_FILENO, line.data(), line.size());
  (void)n;
  // SIGKILL: no destructors, no atexit, no flushing: what a power cut or the OOM killer does.
  kill(getpid(), SIGKILL);
  _exit(137);
}

}  // namespace sandman
#endif

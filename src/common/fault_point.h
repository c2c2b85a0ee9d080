// FaultPoint: named steps of the lifecycle where a crash test kills the
// daemon (SIGKILL to itself), to prove that a restart repairs every step.
// Compiled in only for the test binary `sandman-faults` (CMake option
// SANDMAN_FAULT_INJECTION defines it for that binary's copy of the fault
// sources); in `sandman` every SANDMAN_FAULT_POINT(...) is empty, so the
// release daemon carries no hook at all. Thread-safe.
#pragma once

#ifndef SANDMAN_FAULT_SITE
// A file using the hook must be compiled twice (with and without it); one
// missing from the list would silently never crash.
#error "list this file in SANDMAN_FAULT_SOURCES in CMakeLists.txt"
#endif

#ifdef SANDMAN_FAULT_INJECTION
namespace sandman {
// Kills the process at once when $SANDMAN_FAULT_POINT names this point.
void faultPoint(const char* name);
}  // namespace sandman
#define SANDMAN_FAULT_POINT(name) ::sandman::faultPoint(name)
#else
#define SANDMAN_FAULT_POINT(name) ((void)0)
#endif

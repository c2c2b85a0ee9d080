#!/usr/bin/env bash
# 500 open event streams against a real daemon (Docker, NVML simulator, 1 s telemetry, so every
# stream gets a gpu event a second) while GET /healthz is timed; the same /healthz run with no
# stream is the floor. Usage: bench/event_streams/run.sh <build-dir> [streams] [seconds-per-phase]
# Loopback only; everything it starts is stopped on exit (tests/e2e/lib.sh's cleanup).
BUILD=$(readlink -f "${1:?usage: run.sh <build-dir> [streams] [seconds]}")
STREAMS=${2:-500}
SECONDS_PER_PHASE=${3:-10}
source "$(dirname "${BASH_SOURCE[0]}")/../../tests/e2e/lib.sh"
e2e_init "$BUILD/sandman"
[ -x "$BUILD/event_streams_bench" ] || fail "build the event_streams_bench target first"
use_sim_fixture mixed-host.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s
"$BUILD/event_streams_bench" --port "$API_PORT" --token "$TOKEN" --streams "$STREAMS" --seconds "$SECONDS_PER_PHASE"
rc=$?
note "daemon: $(ps -o rss=,nlwp= -p "$DPID" | awk '{printf "%.1f MiB RSS, %d threads", $1/1024, $2}')"
exit $rc

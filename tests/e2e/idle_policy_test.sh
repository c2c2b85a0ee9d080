#!/usr/bin/env bash
# e2e: the idle policy judges a session by its GPU slice and its SSH gateway traffic together.
# A session whose slice runs a compute process (set in the NVML simulator) stays up while idle
# ones are warned through their open gateway shell, then stopped with the reason (workspace
# kept); the decisions are recorded as session events and counted in /metrics. With
# --auto-extend a busy session nearing expiry is extended.
# Usage: idle_policy_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

use_sim_fixture mixed-host.json

# set_processes GPU_INDEX MIG_UUID COUNT: COUNT compute processes in that MIG device (0 removes them).
set_processes() {
  "$PY" - "$SANDMAN_NVML_SIM_CONFIG" "$1" "$2" "$3" <<'PY' || fail "cannot rewrite the simulator config"
import json, os, sys
path, index, mig, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
c = json.load(open(path))
for g in c["gpus"]:
    t = g.setdefault("telemetry", {})
    t["processes"] = [p for p in t.get("processes", []) if p.get("mig") != mig]
gpu = c["gpus"][index]
gpu["telemetry"]["processes"] += [{"pid": 4000 + i, "used_memory_mib": 512, "mig": mig} for i in range(count)]
json.dump(c, open(path + ".tmp", "w")); os.replace(path + ".tmp", path)
PY
}

# wait_status SID STATUS SECONDS
wait_status() {
  local i
  for i in $(seq $(( $3 * 10 ))); do
    api GET "/api/v1/sessions/$1"
    [ "$(jb .status)" = "$2" ] && return 0
    sleep 0.1
  done
  fail "session $1 not $2 after $3 s (status $(jb .status))"
}

note "idle stop after 8 s (warning 4 s before), traffic window 2 s, 1 s samples"
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic --telemetry-interval 1s \
  --idle-stop-after 8s --idle-warning 4s --idle-traffic-window 2s
mkuser BUSY busy
create_session "$BUSY" '"mig_profile":"1g.10gb","ttl_minutes":10'
BUSY_SID=$SID BUSY_MIG=$(jb .gpu_uuid) BUSY_GPU=$(jb .gpu_index)
set_processes "$BUSY_GPU" "$BUSY_MIG" 1

mkuser IDLE idle
create_session "$IDLE" '"mig_profile":"1g.10gb","ttl_minutes":10'
IDLE_SID=$SID IDLE_KEY=$KEY
t0=$(now)
# An open interactive gateway shell that prints nothing: it must get the warning, then the reason.
(echo 'sleep 30'; sleep 35) | SSHG_TIMEOUT=40 sshg "$IDLE" "$IDLE_KEY" -tt >"$E2E_TMP/idle.out" 2>"$E2E_TMP/idle.err" &
SSH_PID=$!
BG_PIDS+=("$SSH_PID")

wait_status "$IDLE_SID" ended 20
idle_for=$(fsub "$(now)" "$t0")
wait "$SSH_PID"; ssh_rc=$?
api GET "/api/v1/sessions/$IDLE_SID"
assert_match "$(jb .end_reason)" '^idle: idle for [0-9]+ s' "end reason of the idle session"
fle 7.5 "$idle_for" || fail "idle session stopped after ${idle_for}s, before --idle-stop-after 8s"
err=$(cat "$E2E_TMP/idle.out" "$E2E_TMP/idle.err")
assert_contains "$err" "is idle (no GPU work, no SSH traffic); it will be stopped in" "warning on the open shell"
assert_contains "$err" "connection closed: idle" "closing line on the open shell"
assert_ne "$ssh_rc" 0 "ssh exit status after the idle stop"
api GET "/api/v1/sessions/$IDLE_SID/events"
assert_code 200 "GET events"
assert_eq "$(jq -r '[.[].kind] | join(",")' <<<"$BODY")" "idle_warning,idle_stop" "events of the idle session"
[ -d "$WS/$IDLE" ] || fail "the idle session's workspace was removed"
out=$("$SANDMAN" sessions events "$IDLE_SID" --server "$API" --token-file "$TOKEN_FILE" 2>&1) ||
  fail "sandman sessions events: $out"
assert_match "$(tail -1 <<<"$out")" ' idle_stop +idle for [0-9]+ s ' "CLI: last event of the idle session"

api GET "/api/v1/sessions/$BUSY_SID"
assert_eq "$(jb .status)" running "the session with a GPU process after the idle one was stopped"
api GET "/api/v1/sessions/$BUSY_SID/events"
assert_eq "$(jq length <<<"$BODY")" 0 "events of the busy session"

note "the busy session's process ends: it is stopped in turn"
set_processes "$BUSY_GPU" "$BUSY_MIG" 0
wait_status "$BUSY_SID" ended 25
api GET "/api/v1/sessions/$BUSY_SID/events"
assert_eq "$(jq -r '.[-1].kind' <<<"$BODY")" idle_stop "last event of the formerly busy session"

m=$(curl -fsS "$API/metrics") || fail "/metrics not served"
grep -qE '^sandman_idle_decisions_total\{decision="idle_stop"\} 2$' <<<"$m" ||
  fail "/metrics does not count 2 idle stops: $(grep idle_decisions <<<"$m")"

api GET /api/v1/sessions/00000000/events
assert_code 400 "events of a malformed id"
api GET /api/v1/sessions/s-0000000000000000/events
assert_code 404 "events of an unknown session"

note "auto-extend: a busy session with less than --auto-extend-before left gains a step"
stop_daemon
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic --telemetry-interval 1s \
  --auto-extend --auto-extend-before 58s --auto-extend-step 30s --ttl-default 1 --ttl-max 2
mkuser EXT ext
create_session "$EXT" '"mig_profile":"1g.10gb","ttl_minutes":1'
EXT_SID=$SID
first_expiry=$(jb .expires_at)
set_processes "$(jb .gpu_index)" "$(jb .gpu_uuid)" 2
for _ in $(seq 100); do
  api GET "/api/v1/sessions/$EXT_SID"
  [ "$(jb .expires_at)" != "$first_expiry" ] && break
  sleep 0.1
done
gained=$(fsub "$(ts "$(jb .expires_at)")" "$(ts "$first_expiry")")
fabs_le "$(fsub "$gained" 30)" 0.01 || fail "auto-extend moved expiry by ${gained}s, expected 30s"
api GET "/api/v1/sessions/$EXT_SID/events"
assert_eq "$(jq -r '.[0].kind' <<<"$BODY")" auto_extend "event of the extended session"
assert_contains "$(jq -r '.[0].detail' <<<"$BODY")" "GPU processes" "why it was extended"
echo "PASS idle_policy"

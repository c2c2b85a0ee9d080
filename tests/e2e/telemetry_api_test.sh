#!/usr/bin/env bash
# e2e: the telemetry API of a daemon sampling the NVML simulator every second.
# /metrics/realtime lists every GPU and MIG instance with its holder; a
# temperature and an instance's utilisation forced in the simulator's config
# show up there and in /gpus/{uuid}/metrics within a few intervals; trends
# after a restart (the shutdown rolls the open minute up) give per-model and
# per-profile rows with slice-hours; bad parameters are 400, an unknown
# device 404, no token 401.
# Usage: telemetry_api_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

use_sim_fixture mixed-host.json

A100=GPU-4f1b2c3d-1a2b-4c5d-8e9f-0a1b2c3d4e5f

# steer JQ_FILTER: rewrites the simulator's config the way a test should (temp file, rename).
steer() {
  jq "$1" "$SANDMAN_NVML_SIM_CONFIG" >"$SANDMAN_NVML_SIM_CONFIG.new" || fail "jq $1"
  mv "$SANDMAN_NVML_SIM_CONFIG.new" "$SANDMAN_NVML_SIM_CONFIG"
}
# wait_realtime FILTER WHAT: polls /metrics/realtime (up to 10 s) until jq -e FILTER holds.
wait_realtime() {
  local i
  for i in $(seq 50); do
    api GET /api/v1/metrics/realtime
    [ "$CODE" = 200 ] && jq -e "$1" <<<"$BODY" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  fail "$2: '$1' never held; last realtime: ${BODY:0:1500}"
}

note "realtime lists the 4 GPUs and the 3 pre-made instances"
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s
api GET /api/v1/metrics/realtime
assert_code 200 "GET /metrics/realtime"
assert_eq "$(jb '.gpus | length')" 4 "GPUs in realtime"
assert_eq "$(jb '.instances | length')" 3 "MIG instances in realtime"
assert_eq "$(jb .backend_ok)" true "backend_ok"
assert_match "$(jb .taken_at)" "$RFC3339_RE" "taken_at"
assert_eq "$(jb '.gpus[] | select(.uuid == "'$A100'") | .mig_enabled')" true "A100 MIG mode"
assert_eq "$(jb '.gpus[] | select(.uuid == "'$A100'") | .utilization_pct')" null "MIG-mode GPU utilisation is unknown"
assert_eq "$(jb '[.instances[] | select(.gpu_uuid == "'$A100'")] | length')" 3 "instances of the A100"
assert_eq "$(jb '.gpus[] | select(.model | test("4090")) | .mig_enabled')" false "the RTX 4090 is whole"
api GET /metrics/realtime
assert_code 200 "bare /metrics/realtime"

note "a session's slice is attributed to it"
mkuser U1 t
create_session "$U1" '"mig_profile":"1g.10gb","ttl_minutes":10'
MIG=$(jb .gpu_uuid)
assert_match "$MIG" '^MIG-' "gpu_uuid of the session"
wait_realtime '.instances[] | select(.uuid == "'"$MIG"'" and .session_id == "'"$SID"'" and .user_id == "'"$U1"'")' \
  "the session's instance with its holder"
PARENT=$(jq -r '.instances[] | select(.uuid == "'"$MIG"'") | .gpu_uuid' <<<"$BODY")
assert_eq "$(jq -r '[.instances[] | select(.session_id != null)] | length' <<<"$BODY")" 1 "held instances"
assert_eq "$(jq -r '.instances[] | select(.uuid == "'"$MIG"'") | .profile' <<<"$BODY")" 1g.10gb "profile"
top=$("$SANDMAN" gpus top --server "$API" --token-file "$TOKEN_FILE" 2>&1) || fail "sandman gpus top: $top"
assert_match "$(grep -F "$MIG" <<<"$top")" "1g\\.10gb .* $U1 \\($SID\\)\$" "CLI: the slice's row names its holder"
assert_eq "$(grep -cE '^[0-9]+ +GPU-' <<<"$top")" 4 "CLI: one row per GPU"

note "a forced temperature and instance utilisation show up within a few intervals"
steer '(.gpus[] | select(.uuid == "'"$PARENT"'")) |= (.gpm = true | .telemetry.temperature = 87
       | .telemetry.mig_utilization = {"'"$MIG"'": 80}
       | .telemetry.processes = [{"pid": 4242, "used_memory_mib": 900, "mig": "'"$MIG"'"}])'
wait_realtime '(.gpus[] | select(.uuid == "'"$PARENT"'") | .temperature_c == 87)
  and (.instances[] | select(.uuid == "'"$MIG"'") | .temperature_c == 87 and .utilization_pct == 80
       and .compute_processes == 1)' "forced temperature, utilisation and process"
FROM=$(( $(date +%s) - 60 ))
for i in $(seq 25); do
  api GET "/api/v1/gpus/$PARENT/metrics?from=$FROM&step=1s"
  [ "$CODE" = 200 ] && jq -e '[.points[] | select(.temperature_c.max == 87)] | length > 0' <<<"$BODY" >/dev/null && break
  sleep 0.2
done
assert_code 200 "GET /gpus/{uuid}/metrics"
assert_json '[.points[] | select(.temperature_c.max == 87)] | length > 0' "temperature 87 in the GPU's history"
assert_eq "$(jb .resolution)" raw "resolution for step 1s"
assert_eq "$(jb .step)" 1s "step"
api GET "/api/v1/gpus/$MIG/metrics?from=$FROM&step=5s"
assert_code 200 "GET /gpus/{mig}/metrics"
assert_json '[.points[] | select(.session_id == "'"$SID"'")] | length > 0' "the session in the instance's history"
assert_json '[.points[] | select(.utilization_pct.max == 80)] | length > 0' "utilisation 80 in the instance's history"
api GET "/api/v1/gpus/$MIG/metrics?from=$FROM&step=2m"
assert_code 200 "minute resolution"
assert_eq "$(jb .resolution)" minute "resolution for step 2m"

note "trends per model and per profile (a restart rolls the open minute up)"
stop_daemon
restart_daemon
api GET "/api/v1/metrics/trends?hours=1"
assert_code 200 "GET /metrics/trends"
assert_eq "$(jb .hours)" 1 "hours"
assert_json '.by_model[] | select(.model == "NVIDIA A100-SXM4-80GB") | .devices == 3 and .slice_hours > 0' "A100 row (its 3 instances, one held)"
assert_json '.by_profile[] | select(.profile == "1g.10gb") | .slice_hours > 0' "slice-hours of 1g.10gb"
assert_json '.by_profile[] | select(.profile == "whole") | .avg_utilization_pct != null' "whole-GPU row"
assert_json '.by_profile[] | select(.profile == "3g.40gb") | .slice_hours == 0' "unheld profile"
api GET /api/v1/metrics/trends
assert_code 200 "trends with the default window"
assert_eq "$(jb .hours)" 24 "default hours"

note "bad parameters are 400, an unknown device 404, no token 401"
for q in "step=abc" "step=0s" "from=yesterday" "to=noon" "from=100&to=50" "from=0&step=1s"; do
  api GET "/api/v1/gpus/$A100/metrics?$q"
  assert_code 400 "metrics?$q"
  assert_error_json "metrics?$q"
done
assert_contains "$(jb .error)" "at most 11000" "too many points names the limit"
for h in 0 -1 abc 1.5 100000; do
  api GET "/api/v1/metrics/trends?hours=$h"
  assert_code 400 "trends?hours=$h"
done
api GET "/api/v1/gpus/GPU-zz-not-hex/metrics"
assert_code 400 "malformed uuid"
assert_error_json "malformed uuid"
api GET "/api/v1/gpus/GPU-00000000-0000-4000-8000-000000000000/metrics"
assert_code 404 "unknown GPU"
assert_error_json "unknown GPU"
for p in /api/v1/metrics/realtime /api/v1/metrics/trends "/api/v1/gpus/$A100/metrics"; do
  api_as "" GET "$p"
  assert_code 401 "$p without a token"
done

api DELETE "/api/v1/sessions/$SID"
assert_code 200 "DELETE the session"
wait_realtime '[.instances[] | select(.session_id != null)] | length == 0' "no holder after the session ended"

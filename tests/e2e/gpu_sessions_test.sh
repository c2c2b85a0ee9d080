#!/usr/bin/env bash
# e2e: sessions with GPU slices, the daemon running the production NVML loader over the NVML
# simulator library. Dynamic mode creates a 1g instance the simulator shows and destroys it when
# the session ends; the container carries the UUID; 50 concurrent creates for 7 slots give exactly
# 7 sessions and 43 409s; a daemon killed between creating an instance and starting the container
# leaks no instance after restart; static mode hands out pre-made instances and whole GPUs.
# Usage: gpu_sessions_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

# mig_count: MIG instances the simulator (through the daemon) lists now.
mig_count() { api GET /api/v1/gpus; jq '[.gpus[].mig_instances[]] | length' <<<"$BODY"; }

note "dynamic: a 1g.5gb session creates its instance, the container gets it, ending destroys it"
use_sim_fixture a100-40gb-mig-empty.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic
assert_eq "$(mig_count)" 0 "MIG instances before any session"
mkuser U1 g
create_session "$U1" '"mig_profile":"1g.5gb","ttl_minutes":10'
MIG=$(jb .gpu_uuid)
assert_match "$MIG" '^MIG-[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' "gpu_uuid of a dynamic session"
assert_eq "$(jb .mig_profile)" 1g.5gb "mig_profile"
assert_eq "$(jb .gpu_index)" 0 "gpu_index"
assert_eq "$(jb .gpu_attach)" env-only "gpu_attach without the nvidia runtime"
api GET /api/v1/gpus
assert_eq "$(jq -r --arg u "$MIG" '.gpus[0].mig_instances[] | select(.uuid == $u) | .session_id' <<<"$BODY")" "$SID" \
  "the simulator's new instance, held by the session"
assert_eq "$(jq -r --arg u "$MIG" '.gpus[0].mig_instances[] | select(.uuid == $u) | .placement.start' <<<"$BODY")" 6 \
  "placement of the first 1g (slot 6 keeps the 4g/3g placements free)"
grep -q "\"$MIG\"" "$SANDMAN_NVML_SIM_CONFIG.state" 2>/dev/null || grep -q "gi" "$SANDMAN_NVML_SIM_CONFIG.state" \
  || fail "simulator state file has no instance"
env=$(docker inspect -f '{{join .Config.Env "\n"}}' "$CONTAINER")
assert_contains "$env" "NVIDIA_VISIBLE_DEVICES=$MIG" "container environment"
out=$(sshc "$SSH_PORT" "$U1" "$KEY" 'echo $NVIDIA_VISIBLE_DEVICES') || fail "ssh into the GPU session failed"
assert_eq "$out" "$MIG" "NVIDIA_VISIBLE_DEVICES seen by the user"
assert_eq "$(docker inspect -f '{{index .Config.Labels "sandman.gpu"}}' "$CONTAINER")" "$MIG" "sandman.gpu label"
api DELETE "/api/v1/sessions/$SID"
assert_code 200 "DELETE of the GPU session"
assert_eq "$(mig_count)" 0 "MIG instances after the session ended"

note "the default profile maps to the model (3g class -> 3g.20gb on A100-40GB)"
mkuser U2 d
create_session "$U2" '"ttl_minutes":10'
assert_eq "$(jb .mig_profile)" 3g.20gb "default profile on A100-40GB"
api GET /api/v1/gpus/profiles
assert_code 200 "GET /gpus/profiles"
assert_eq "$(jq -r '.profiles[] | select(.name == "3g.20gb") | .gpus[0].available' <<<"$BODY")" 1 "3g.20gb left after one"
assert_eq "$(jq -r '.profiles[] | select(.name == "1g.5gb") | .memory_slices' <<<"$BODY")" 1 "1g.5gb memory slices"
api DELETE "/api/v1/sessions/$SID"
assert_eq "$(mig_count)" 0 "MIG instances after the default-profile session ended"

note "bad GPU requests: 400 listing valid profiles, 400 both fields, 409 saying what is free"
mkuser U3 b
api POST /api/v1/sessions "{\"user_id\":\"$U3\",\"mig_profile\":\"9g.99gb\"}"
assert_code 400 "unknown profile"
assert_contains "$BODY" "1g.5gb" "the 400 lists valid profiles"
api POST /api/v1/sessions "{\"user_id\":\"$U3\",\"mig_profile\":\"1g.5gb\",\"mig_instance_uuid\":\"MIG-x\"}"
assert_code 400 "profile and uuid together"
create_session "$U3" '"mig_profile":"7g.40gb","ttl_minutes":10'
mkuser U4 f
api POST /api/v1/sessions "{\"user_id\":\"$U4\",\"mig_profile\":\"1g.5gb\"}"
assert_code 409 "1g while a 7g fills the GPU"
assert_error_json "409 no room"
api DELETE "/api/v1/sessions/$SID"

note "50 concurrent creates for 7 slots: exactly 7 sessions and 43 clear 409s"
codes=$E2E_TMP/codes; mkdir -p "$codes"
pids=()
for i in $(seq 50); do
  mkuser u "c${i}x"
  ( curl -sS -o "$codes/$i.json" -w '%{http_code}\n' -X POST -H "Authorization: Bearer $TOKEN" \
      -H 'Content-Type: application/json' --max-time 120 \
      --data "{\"user_id\":\"$u\",\"mig_profile\":\"1g.5gb\",\"ttl_minutes\":10}" "$API/api/v1/sessions" \
      >"$codes/$i.code" ) &
  pids+=($!)
done
wait "${pids[@]}"  # not a bare wait: the daemon is a child too
for f in "$codes"/*.json; do
  s=$(jq -r '.session_id // empty' "$f" 2>/dev/null)
  [ -n "$s" ] && SIDS+=("$s")
done
ok=$(cat "$codes"/*.code | grep -c '^201$' || true)
busy=$(cat "$codes"/*.code | grep -c '^409$' || true)
assert_eq "$ok" 7 "201s among 50 concurrent 1g creates"
assert_eq "$busy" 43 "409s among 50 concurrent 1g creates (codes: $(cat "$codes"/*.code | sort | uniq -c | tr '\n' ' '))"
for f in "$codes"/*.json; do
  if jq -e '.code == "conflict"' "$f" >/dev/null; then assert_contains "$(jq -r .error "$f")" "free" "a 409 says what is free"; break; fi
done
api GET /api/v1/gpus
assert_eq "$(jq '[.gpus[0].mig_instances[] | select(.session_id != null)] | length' <<<"$BODY")" 7 "instances held"
api DELETE '/api/v1/sessions?confirm=true'
assert_code 200 "delete all"
assert_eq "$(mig_count)" 0 "instances after deleting all"

note "kill -9 between instance creation and container start: no instance leaks after restart"
mkuser U5 k
( curl -sS -o /dev/null -X POST -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --max-time 60 --data "{\"user_id\":\"$U5\",\"mig_profile\":\"2g.10gb\",\"ttl_minutes\":10}" \
    "$API/api/v1/sessions" ) &
CURL_PID=$!
killed=
for _ in $(seq 1000); do
  if [ -f "$SANDMAN_NVML_SIM_CONFIG.state" ] && [ "$(mig_count)" != 0 ]; then kill -9 "$DPID"; killed=1; break; fi
  sleep 0.005
done
[ -n "$killed" ] || fail "never saw the instance appear"
wait "$DPID" 2>/dev/null; DPID=
wait "$CURL_PID" 2>/dev/null
restart_daemon
assert_eq "$(mig_count)" 0 "MIG instances after restart (leaked instance destroyed)"
api GET "/api/v1/sessions?user_id=$U5"
assert_eq "$(jq -r '.[0].status' <<<"$BODY")" failed "the interrupted session"
for s in $(jq -r '.[].session_id' <<<"$BODY"); do SIDS+=("$s"); assert_eq "$(session_containers "$s")" "" "container of the interrupted session"; done
stop_daemon

note "static mode: pre-made instances by UUID and by profile, never created; a MIG-off GPU goes whole"
use_sim_fixture mixed-host.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static
before=$(mig_count)
api GET /api/v1/gpus
M3=$(jq -r '[.gpus[].mig_instances[] | select(.profile == "3g.40gb")][0].uuid' <<<"$BODY")
mkuser U6 s
create_session "$U6" "\"mig_instance_uuid\":\"$M3\",\"ttl_minutes\":10"
assert_eq "$(jb .gpu_uuid)" "$M3" "static by uuid"
mkuser U7 t
api POST /api/v1/sessions "{\"user_id\":\"$U7\",\"mig_instance_uuid\":\"$M3\"}"
assert_code 409 "an instance held by another session"
api POST /api/v1/sessions "{\"user_id\":\"$U7\",\"mig_instance_uuid\":\"MIG-00000000-0000-5000-8000-000000000000\"}"
assert_code 400 "unknown instance uuid"
create_session "$U7" '"mig_profile":"whole","ttl_minutes":10'
assert_eq "$(jb .gpu_uuid)" "$(jq -r '.gpus[] | select(.mig_enabled == false) | .uuid' <<<"$(api GET /api/v1/gpus; echo "$BODY")")" "whole GPU is the MIG-off one"
assert_eq "$(jb .mig_profile)" null "no MIG profile on a whole GPU"
api DELETE "/api/v1/sessions/$SID"
api DELETE "/api/v1/sessions?confirm=true"
assert_eq "$(mig_count)" "$before" "static mode never creates or destroys instances"
stop_daemon
exit 0

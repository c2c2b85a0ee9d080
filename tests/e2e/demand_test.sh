#!/usr/bin/env bash
# e2e: allocation by need, demand recording and layout advice on a static-MIG host (NVML
# simulator: an A100-SXM4-80GB laid out 1g.10gb x2 + 2g.20gb + 3g.40gb, and an RTX 4090 with
# MIG off). gpu_memory_gb creates get the cheapest free device that fits and say why; bad input
# is a 400 that changes nothing; a full host is a 409 recorded as demand, like a budget refusal;
# GET /api/v1/demand pages and filters; GET /api/v1/advice/layout answers the same twice.
# Usage: demand_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

CONN=(--server "$API" --token-file "$TOKEN_FILE")
use_sim_fixture a100-static-and-4090.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static --budget-enforcement block

count_active() { api GET "/api/v1/sessions?status=active"; jb 'length'; }
count_demand() { api GET "/api/v1/demand"; jb 'length'; }

note "by need: the cheapest free device with the memory (A100 2.00/h: 1g = 2/7; RTX 4090 0.40/h)"
mkuser U1 da
create_session "$U1" '"gpu_memory_gb":10,"ttl_minutes":10'
S1=$SID
assert_eq "$(jb .allocation.profile)" 1g.10gb "10 GB: a 1g.10gb slice"
assert_eq "$(jb .allocation.device)" "MIG 1g.10gb on GPU 0 (NVIDIA A100-SXM4-80GB)" "the device, in words"
assert_eq "$(jb .allocation.usd_per_hour)" 0.2857 "its price per hour"
assert_contains "$(jb .allocation.why)" "cheapest of" "why it was chosen"
assert_eq "$(jb .mig_profile)" 1g.10gb "the session holds it"
mkuser U2 db
create_session "$U2" '"gpu_memory_gb":22,"workload":"training","ttl_minutes":10'
S2=$SID
assert_eq "$(jb .allocation.profile)" whole "22 GB: the whole RTX 4090 (0.40/h) beats 3g.40gb (0.86/h)"
assert_eq "$(jb .allocation.device)" "GPU 1 (NVIDIA GeForce RTX 4090)" "the whole GPU"
mkuser U3 dc
create_session "$U3" '"gpu_memory_gb":30,"ttl_minutes":10'
S3=$SID
assert_eq "$(jb .allocation.profile)" 3g.40gb "30 GB: the 3g.40gb"

note "bad input: a 400 that changes nothing"
before_sessions=$(count_active)
before_demand=$(count_demand)
mkuser U4 dd
for body in '"gpu_memory_gb":-1' '"gpu_memory_gb":0' '"gpu_memory_gb":"ten"' '"gpu_memory_gb":true' \
  '"gpu_memory_gb":10,"mig_profile":"1g.10gb"' '"gpu_memory_gb":10,"workload":"gaming"' '"workload":"training"' \
  '"gpu_memory_gb":500'; do
  api POST /api/v1/sessions "{\"user_id\":\"$U4\",$body}"
  assert_code 400 "create with $body"
  assert_error_json "create with $body"
done
assert_contains "$BODY" "largest is" "500 GB names the largest device"
assert_eq "$(count_active)" "$before_sessions" "no session from bad input"
assert_eq "$(count_demand)" "$before_demand" "bad input is no demand"

note "nothing free that fits: 409, recorded as demand"
api POST /api/v1/sessions "{\"user_id\":\"$U4\",\"gpu_memory_gb\":35}"
assert_code 409 "35 GB while the 3g.40gb is held"
assert_contains "$BODY" "would fit" "the 409 says what would fit"
assert_eq "$(count_active)" "$before_sessions" "no session from a refusal"

note "refused for a budget: recorded too"
api POST /api/v1/teams '{"name":"lab"}'
assert_code 201 "POST /teams"
api PUT "/api/v1/users/$U1" '{"team":"lab"}'
assert_code 200 "U1 in lab"
api DELETE "/api/v1/sessions/$S1"
assert_code 200 "DELETE S1"
sleep 1
mkuser U5 de
api PUT "/api/v1/users/$U5" '{"team":"lab"}'
# U1's session was booked before U1 joined lab: give lab a spend of its own.
create_session "$U5" '"mig_profile":"1g.10gb","ttl_minutes":10'
S5=$SID
sleep 1.2
api DELETE "/api/v1/sessions/$S5"
assert_code 200 "DELETE S5"
api PUT /api/v1/budgets '{"scope":"team","name":"lab","usd_per_month":0.000001}'
assert_code 200 "a spent budget for lab"
api POST /api/v1/sessions "{\"user_id\":\"$U5\",\"gpu_memory_gb\":10}"
assert_code 402 "a create paid by a spent budget"

note "GET /api/v1/demand: every request that asked for capacity"
api GET /api/v1/demand
assert_code 200 "GET /demand"
assert_eq "$(jb 'length')" 6 "U1, U2, U3, the 409, U5, the 402"
assert_eq "$(jb '[.[].outcome] | join(",")')" "accepted,accepted,accepted,refused_capacity,accepted,refused_budget" \
  "outcomes, oldest first"
assert_eq "$(jb '.[0].gpu_memory_gb')" 10 "what was asked"
assert_eq "$(jb '.[1].workload')" training "the workload asked"
assert_eq "$(jb '.[0].granted_profile')" 1g.10gb "what it got"
assert_eq "$(jb '.[0].session_id')" "$S1" "the session it became"
assert_eq "$(jb '.[0].held_seconds | type')" number "S1 ended: its held duration is known"
assert_eq "$(jb '.[1].held_seconds')" null "S2 still runs"
assert_eq "$(jb '.[5].team')" lab "the team a refused request would have paid for"
api GET "/api/v1/demand?outcome=refused_capacity"
assert_eq "$(jb 'length')" 1 "filtered by outcome"
assert_eq "$(jb '.[0].gpu_memory_gb')" 35 "the refused ask"
api GET "/api/v1/demand?outcome=nope"
assert_code 400 "an unknown outcome"
api_curl "$TOKEN" GET "/api/v1/demand?limit=4" -D "$E2E_TMP/hdrs"
assert_eq "$(jb 'length')" 4 "a page of 4"
cursor=$(grep -i '^x-next-cursor:' "$E2E_TMP/hdrs" | awk '{print $2}' | tr -d '\r')
[ -n "$cursor" ] || fail "no X-Next-Cursor on a full page"
api GET "/api/v1/demand?limit=4&cursor=$cursor"
assert_eq "$(jb '[.[].outcome] | join(",")')" "accepted,refused_budget" "the next page"
api GET "/api/v1/demand?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z"
assert_eq "$(jb 'length')" 0 "a window with no demand"
out=$(timeout 30 "$SANDMAN" demand --outcome refused_capacity "${CONN[@]}" 2>&1) || fail "sandman demand: $out"
assert_contains "$out" "35GB" "sandman demand shows the ask"

note "GET /api/v1/advice/layout: replayed through the allocator, the same answer twice"
api DELETE "/api/v1/sessions/$S2"
api DELETE "/api/v1/sessions/$S3"
api GET /api/v1/advice/layout
assert_code 200 "GET /advice/layout"
assert_eq "$(jb '.current.gpus[0].profiles | join(" ")')" "3g.40gb 2g.20gb 1g.10gb 1g.10gb" "the current layout"
assert_eq "$(jb '.demand.replayed')" 5 "replayed: everything but the budget refusal"
assert_eq "$(jb '.current.requests_served')" 4 "the current layout served what it served"
assert_eq "$(jb '.gain.served_slice_hours | type')" number "the gain is a number"
first=$(jq -c '{current, proposed, gain, change}' <<<"$BODY")
api GET /api/v1/advice/layout
assert_eq "$(jq -c '{current, proposed, gain, change}' <<<"$BODY")" "$first" "the same demand, the same answer"
api GET "/api/v1/advice/layout?days=0"
assert_code 400 "days out of range"
out=$(timeout 30 "$SANDMAN" advice layout "${CONN[@]}" 2>&1) || fail "sandman advice layout: $out"
assert_contains "$out" "PROPOSED" "sandman advice layout prints the table"
note "demand: ok"

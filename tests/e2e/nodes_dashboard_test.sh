#!/usr/bin/env bash
# e2e: issue 15's API surface on the Docker backend, the daemon sampling the
# NVML simulator (mixed host: two A100s in MIG mode, an H100, an RTX 4090) in
# static MIG mode. The local host is the one GPU node: list (search, status,
# cluster, sort, paging), get, metadata edits, status changes with "recently
# changed", create/delete refused with clear 400s; maintenance and drained
# refuse a session create with a 409 naming the node and its status, and a
# running session is listed, never stopped; /gpu/overview and
# /gpu/devices?nodeName= with the documents' fields; POST
# /gpu/devices/{id}/mig lays instances out (the seeds' names too), refuses
# what a session holds (409) and bad input (400) with nothing changed; every
# /dashboard resource answers from the live daemon; bad parameters are 400;
# the CLI's `sandman nodes status`.
# Usage: nodes_dashboard_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

use_sim_fixture mixed-host.json
A100=GPU-4f1b2c3d-1a2b-4c5d-8e9f-0a1b2c3d4e5f
A100B=GPU-5a6b7c8d-2b3c-4d5e-9f0a-1b2c3d4e5f60
RTX=GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182

# instances_of GPU: the MIG instances the simulator (through the daemon) has on it now.
instances_of() { api GET /api/v1/gpus; jq -c --arg g "$1" '[.gpus[] | select(.uuid == $g) | .mig_instances[] | .profile] | sort' <<<"$BODY"; }
# bad METHOD PATH BODY WHAT [CODE]: expects a clear error (400 unless CODE) in the API's shape.
bad() {
  api "$1" "$2" "$3"
  assert_code "${5:-400}" "$4"
  assert_error_json "$4"
}

start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static --telemetry-interval 1s
for i in $(seq 50); do api GET /api/v1/metrics/realtime; [ "$CODE" = 200 ] && break; sleep 0.2; done

note "the local host is the one node"
api GET /api/v1/gpu-nodes
assert_code 200 "GET /gpu-nodes"
assert_eq "$(jb .backend)" docker "backend"
assert_eq "$(jb .total)" 1 "one node"
NODE=$(jb '.nodes[0].name')
assert_eq "$NODE" "$(hostname)" "the node is the host"
assert_eq "$(jb '.nodes[0].status')" active "status of a node never edited"
assert_eq "$(jb '.nodes[0].gpu_count')" 4 "GPUs from the GPU backend"
assert_eq "$(jb '.nodes[0].mig_instances')" 3 "MIG instances"
assert_eq "$(jb '.nodes[0].updated_at')" null "never edited"
api GET "/api/v1/gpu-nodes/$NODE"
assert_code 200 "GET /gpu-nodes/{name}"
assert_eq "$(jb '.gpus | length')" 4 "the node's GPUs in detail"
api GET /api/v1/gpu-nodes/not-this-host
assert_code 404 "another node"
assert_contains "$(jb .error)" "one node, the local host $NODE" "404 says why"

note "metadata edits, strictly checked"
api PUT "/api/v1/gpu-nodes/$NODE" '{"cluster":"lab-a","description":"Rack 12 box","labels":{"rack":"r12"},"by":"ops"}'
assert_code 200 "PUT metadata"
assert_eq "$(jb .cluster)" lab-a "cluster"
assert_eq "$(jb .labels.rack)" r12 "labels"
assert_eq "$(jb .updated_by)" ops "updated_by"
assert_match "$(jb .updated_at)" "$RFC3339_RE" "updated_at"
bad PUT "/api/v1/gpu-nodes/$NODE" '{"colour":"red"}' "unknown field"
assert_contains "$(jb .error)" "unknown field 'colour'" "names the field"
bad PUT "/api/v1/gpu-nodes/$NODE" '{"cluster":"has spaces"}' "bad cluster"
bad PUT "/api/v1/gpu-nodes/$NODE" '{"labels":{"rack":7}}' "label not a string"
bad PUT "/api/v1/gpu-nodes/$NODE" '{"name":"renamed"}' "rename"
bad PUT "/api/v1/gpu-nodes/$NODE" '{"status":"maintenance"}' "status through PUT"
bad PUT "/api/v1/gpu-nodes/$NODE" 'not json' "not JSON"
api GET "/api/v1/gpu-nodes/$NODE"
assert_eq "$(jb .cluster)/$(jb .labels.rack)/$(jb .description)" "lab-a/r12/Rack 12 box" "refused edits changed nothing"
bad POST /api/v1/gpu-nodes '{"name":"gpu-9"}' "create on Docker"
assert_contains "$(jb .error)" "one node is the local host $NODE" "create explains"
bad DELETE "/api/v1/gpu-nodes/$NODE" '' "delete the host"
assert_contains "$(jb .error)" "cannot be deleted" "delete explains"

note "list filters, sort and paging"
for q in "search=rack%2012" "cluster=lab-a" "status=active" "sort=-updated_at" "changed_since=2020-01-01T00:00:00Z"; do
  api GET "/api/v1/gpu-nodes?$q"
  assert_code 200 "list ?$q"
  assert_eq "$(jb .count)" 1 "?$q finds the node"
done
for q in "search=nothing-like-it" "cluster=lab-b" "status=maintenance"; do
  api GET "/api/v1/gpu-nodes?$q"
  assert_eq "$(jb .count)" 0 "?$q finds nothing"
done
for q in "status=offline" "sort=colour" "limit=0" "limit=abc" "changed_since=yesterday" "cursor=forged"; do
  bad GET "/api/v1/gpu-nodes?$q" '' "list ?$q"
done

note "maintenance refuses a create, naming the node and its status; running sessions stay"
mkuser U1 na
create_session "$U1" '"mig_profile":"1g.10gb","ttl_minutes":10'
HELD=$(jb .gpu_uuid)
RUNNING=$SID
api PATCH "/api/v1/gpu-nodes/$NODE/status" '{"status":"maintenance","reason":"PSU swap","by":"ops"}'
assert_code 200 "PATCH status maintenance"
assert_eq "$(jb .status)" maintenance "status"
assert_eq "$(jb .takes_sessions)" false "takes no sessions"
assert_eq "$(jb '.still_running[0].id')" "$RUNNING" "the running session is listed"
mkuser U2 nb
api GET /api/v1/sessions/stats; before=$BODY
api POST /api/v1/sessions "{\"user_id\":\"$U2\",\"ttl_minutes\":5}"
assert_code 409 "create in maintenance"
assert_error_json "create in maintenance"
assert_contains "$(jb .error)" "node $NODE is in maintenance (PSU swap), set by ops" "the refusal names node and status"
api GET /api/v1/sessions/stats
assert_eq "$BODY" "$before" "a refused create changes nothing"
api GET "/api/v1/sessions/$RUNNING"
assert_eq "$(jb .status)" running "maintenance never stops a running session"
api PATCH "/api/v1/gpu-nodes/$NODE/status" '{"status":"drained"}'
assert_code 200 "PATCH status drained"
assert_eq "$(jb .drain_complete)" false "drained with a session still running"
api POST /api/v1/sessions "{\"user_id\":\"$U2\",\"ttl_minutes\":5}"
assert_code 409 "create while drained"
assert_contains "$(jb .error)" "node $NODE is drained" "drained refuses too"
bad PATCH "/api/v1/gpu-nodes/$NODE/status" '{"status":"offline"}' "unknown status"
bad PATCH "/api/v1/gpu-nodes/$NODE/status" '{}' "no status"
bad PATCH "/api/v1/gpu-nodes/$NODE/status" '{"status":"active","force":1}' "unknown field in status"
api GET "/api/v1/gpu-nodes?status=drained"
assert_eq "$(jb .count)" 1 "refused status edits changed nothing"
out=$("$SANDMAN" nodes status "$NODE" active --reason "PSU swapped" --server "$API" --token-file "$TOKEN_FILE" 2>&1) \
  || fail "sandman nodes status: $out"
assert_contains "$out" "node $NODE: active" "CLI sets the status"
out=$("$SANDMAN" nodes ls --server "$API" --token-file "$TOKEN_FILE" 2>&1) || fail "sandman nodes ls: $out"
assert_match "$out" "$NODE +lab-a +active" "CLI lists the host"
create_session "$U2" '"ttl_minutes":5'
assert_eq "$(jb .status)" running "active again: creates work"

note "recently changed"
api GET /api/v1/gpu-nodes/recent
assert_code 200 "GET /gpu-nodes/recent"
assert_json '[.changes[] | select(.kind == "status")] | length >= 3' "status changes logged"
assert_json '[.changes[] | select(.kind == "metadata")] | length >= 1' "metadata change logged"
assert_eq "$(jb '.nodes[0].name')" "$NODE" "the node changed"
bad GET "/api/v1/gpu-nodes/recent?hours=0" '' "hours=0"

note "/gpu/overview and /gpu/devices with the documents' fields"
api GET /api/v1/gpu/overview
assert_code 200 "GET /gpu/overview"
assert_eq "$(jb .totalGpuDevices)" 4 "totalGpuDevices"
assert_eq "$(jb .totalMigInstances)" 3 "totalMigInstances"
assert_eq "$(jb .activeAllocations)" 2 "activeAllocations"
assert_json '.devicesByModel | length >= 2' "devicesByModel"
assert_json 'has("overallGpuUtilization")' "overallGpuUtilization"
api GET "/api/v1/gpu/devices?nodeName=$NODE"
assert_code 200 "GET /gpu/devices?nodeName="
assert_eq "$(jb '.devices | length')" 4 "devices of the node"
assert_eq "$(jb '.devices[] | select(.deviceId == "'$A100'") | .migInstances | length')" 3 "the A100's instances"
for i in $(seq 30); do
  api GET "/api/v1/gpu/devices?nodeName=$NODE"
  [ "$(jb '[.devices[].migInstances[] | select(.deviceId == "'$HELD'") | .sessionId][0]')" = "$RUNNING" ] && break
  sleep 0.2
done
assert_eq "$(jb '[.devices[].migInstances[] | select(.deviceId == "'$HELD'") | .sessionId][0]')" "$RUNNING" "holder"
api GET "/api/v1/gpu/devices?limit=3"
assert_eq "$(jb '.devices | length')" 3 "a page of 3"
bad GET "/api/v1/gpu/devices?nodeName=elsewhere" '' "unknown node" 404
bad GET "/api/v1/gpu/devices?nodeName=bad%20name" '' "bad nodeName"

note "POST /gpu/devices/{id}/mig: a layout on the empty A100 (the seeds' names), refusals change nothing"
api POST "/api/v1/gpu/devices/$A100B/mig" '["A100_3G40GB", "2g.20gb"]'
assert_code 201 "MIG create"
assert_eq "$(jb '[.created[].profile] | join(",")')" "3g.40gb,2g.20gb" "created profiles"
assert_eq "$(jb '[.created[].placementStart] | join(",")')" "0,4" "placements"
assert_eq "$(instances_of "$A100B")" '["2g.20gb","3g.40gb"]' "the simulator has them"
bad POST "/api/v1/gpu/devices/$A100B/mig" '["9g.99gb"]' "unknown profile"
assert_contains "$(jb .error)" "offers no MIG profile '9g.99gb'" "names the profile"
bad POST "/api/v1/gpu/devices/$A100B/mig" '[{"profile":"1g.10gb","placement_start":0}]' "placement taken" 409
bad POST "/api/v1/gpu/devices/$A100B/mig" '[{"profile":"2g.20gb","placement_start":1}]' "invalid placement"
assert_contains "$(jb .error)" "valid starts" "lists the valid starts"
bad POST "/api/v1/gpu/devices/$A100B/mig" '{"profiles":["1g.10gb"],"colour":1}' "unknown field"
bad POST "/api/v1/gpu/devices/$A100B/mig" '[]' "empty layout"
bad POST "/api/v1/gpu/devices/$A100B/mig" '["3g.40gb","3g.40gb","1g.10gb"]' "does not fit" 409
bad POST "/api/v1/gpu/devices/$RTX/mig" '["1g.10gb"]' "MIG off"
assert_contains "$(jb .error)" "never changes MIG mode" "MIG off explains"
bad POST "/api/v1/gpu/devices/GPU-00000000-0000-0000-0000-000000000000/mig" '["1g.10gb"]' "unknown GPU" 404
bad POST "/api/v1/gpu/devices/$A100/mig" '{"profiles":["7g.80gb"],"replace":true}' "replace over a held slice" 409
assert_contains "$(jb .error)" "held by a session" "409 names the holder"
assert_eq "$(instances_of "$A100B")" '["2g.20gb","3g.40gb"]' "refusals changed nothing (A100 #2)"
assert_eq "$(instances_of "$A100")" '["1g.10gb","2g.20gb","3g.40gb"]' "refusals changed nothing (A100 #1)"
api_as "" POST "/api/v1/gpu/devices/$A100B/mig" '["1g.10gb"]'
assert_code 401 "MIG create without the token"
api POST "/api/v1/gpu/devices/$A100B/mig" '{"profiles":["1g.10gb"],"replace":true}'
assert_code 201 "replace an unheld layout"
assert_eq "$(jb '.destroyed | length')" 2 "replaced instances"
assert_eq "$(instances_of "$A100B")" '["1g.10gb"]' "the new layout"

note "the dashboard"
for p in /api/v1/dashboard /api/v1/dashboard/stats/overall /api/v1/dashboard/stats/clusters \
         /api/v1/dashboard/stats/models /api/v1/dashboard/trends/usage /api/v1/dashboard/alerts/active \
         /api/v1/dashboard/activities/recent /api/v1/dashboard/metrics/realtime /dashboard/stats/overall; do
  api GET "$p"
  assert_code 200 "GET $p"
done
api GET /api/v1/dashboard/stats/overall
assert_eq "$(jb .nodes.total)" 1 "overall: nodes"
assert_eq "$(jb .gpus.total)" 4 "overall: GPUs"
assert_eq "$(jb .sessions.active)" 2 "overall: active sessions"
assert_json '.cost.month_to_date_usd | type == "number"' "overall: spend this month"
api GET /api/v1/dashboard/stats/clusters
assert_eq "$(jb '.clusters[0].cluster')" lab-a "clusters: the host's cluster"
assert_eq "$(jb '.clusters[0].running_sessions')" 2 "clusters: sessions"
api GET /api/v1/dashboard/stats/models
assert_json '[.models[] | select(.model | test("A100"))][0].gpus == 2' "models: two A100s"
api GET "/api/v1/dashboard/trends/usage?hours=2&step_minutes=30"
assert_eq "$(jb '.points | length')" 4 "trend points"
api GET /api/v1/dashboard/activities/recent?limit=100
assert_json '[.activities[] | select(.kind == "session_created")] | length == 2' "activities: both creates"
assert_json '[.activities[] | select(.kind == "node_status")] | length >= 3' "activities: status changes"
assert_json '[.activities[] | select(.kind == "node_mig")] | length == 2' "activities: MIG layouts"
api GET /api/v1/dashboard/metrics/realtime
assert_eq "$(jb '.gpus | length')" 4 "realtime GPUs"
for q in "trends/usage?hours=0" "trends/usage?step_minutes=1" "alerts/active?limit=x" "activities/recent?limit=0"; do
  bad GET "/api/v1/dashboard/$q" '' "dashboard ?$q"
done
api_as "" GET /api/v1/dashboard
assert_code 401 "dashboard without the token"

note "figures: 50 sequential GETs each (curl time_total, ms: median / max)"
for p in /api/v1/dashboard /api/v1/dashboard/stats/overall /api/v1/gpu-nodes /api/v1/gpu/overview /api/v1/gpu/devices; do
  for i in $(seq 50); do
    curl -sS -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$API$p"
  done | sort -n | awk -v p="$p" '{v[NR]=$1*1000} END {printf "   %-34s %6.2f / %6.2f\n", p, v[int((NR+1)/2)], v[NR]}'
done

note "the node record survives a restart"
stop_daemon
restart_daemon
api GET "/api/v1/gpu-nodes/$NODE"
assert_eq "$(jb .cluster)/$(jb .status)" "lab-a/active" "kept in the store"
echo "PASS"

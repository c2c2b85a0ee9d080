#!/usr/bin/env bash
# k8s: the cluster's GPU nodes through `sandman serve --backend kubernetes` (as ServiceAccount sandman,
# shipped RBAC only), against a real API server and scheduler with three fake GPU nodes and the fake
# kubelet. Checks: /gpu-nodes and `sandman nodes ls` (model, MIG strategy, capacity/allocatable/in
# use, Ready, cordon, mig.config); /gpus and /gpus/available answer for the cluster, with what fits
# now before and after a session and while a node is cordoned (kubectl cordon/uncordon seen through
# the watch); a MIG layout change end to end through nvidia.com/mig.config with
# fake_mig_manager.py standing in for the GPU operator: refused while a session runs on the node,
# then approved: the node held (a session asking for its model fails), pending -> success, the
# new layout's capacity seen and the node let go; a layout the GPUs cannot take ends failed and
# keeps the node held until released; proposals survive a daemon restart. A node in maintenance
# (PATCH /gpu-nodes/{name}/status: Sandman's sandman.io/status annotation) takes no session;
# metadata edits are annotations too; create/delete of cluster nodes and MIG creates are 400.
# Usage: nodes_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SANDMAN=${1:?usage: nodes_test.sh <path-to-sandman>}
SANDMAN=$(cd "$(dirname "$SANDMAN")" && pwd)/$(basename "$SANDMAN")
k8s_test_init
command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required (fake kubelet)"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"
H100=NVIDIA-H100-80GB-HBM3

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
k8s_apply_manifests || fail "apply deploy/kubernetes"
# gpu-a: an H100 in the balanced layout; gpu-b: an A100 80GB cut in seven; gpu-c: an RTX 4090, whole.
NODE_A=name=gpu-a,fixture=mixed-host.json,gpus=2
k8s_fake_nodes --node "$NODE_A,mig=all-balanced" --node name=gpu-b,fixture=mixed-host.json,gpus=1,mig=all-1g.10gb \
  --node name=gpu-c,fixture=mixed-host.json,gpus=3 >/dev/null || fail "fake_nodes.py failed"
k8s_start_kubelet gpu-a,gpu-b,gpu-c
MIGM_LOG=$K8S_TMP/mig-manager.log
"$K8S_PY" "$K8S_LIB_DIR/fake_mig_manager.py" --node "$NODE_A" --delay 3 --ready-file "$K8S_TMP/migm.ready" \
  >>"$MIGM_LOG" 2>&1 &
MIGM_PID=$!
stop_migm() { [ -n "$MIGM_PID" ] && k8s_stop_pid "$MIGM_PID" 5; MIGM_PID=; }
K8S_CLEANUP+=(stop_migm)
k8s_wait "the fake MIG manager" 30 test -e "$K8S_TMP/migm.ready"
note "3 fake GPU nodes, the fake kubelet, the fake MIG manager (gpu-a)"

TOKEN_FILE=$K8S_TMP/sandman.token
k8s_sandman_token_file "$TOKEN_FILE" 2h || fail "token"
API_PORT=$(k8s_free_port) || fail "no free port"
GW_PORT=$(k8s_free_port) || fail "no free port"
STATE=$K8S_TMP/state
mkdir -p "$STATE"
DAEMON_LOG=$K8S_TMP/sandman.log
DPID=
stop_daemon() {
  [ -n "$DPID" ] || return 0
  kill -TERM "$DPID" 2>/dev/null
  local i
  for i in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  DPID=
}
show_logs() {
  [ -s "$DAEMON_LOG" ] && { echo "--- sandman log (last 30 lines) ---"; tail -n 30 "$DAEMON_LOG"; }
  [ -s "$MIGM_LOG" ] && { echo "--- fake MIG manager ---"; tail -n 20 "$MIGM_LOG"; }
}
K8S_CLEANUP+=(stop_daemon)
start_daemon() {
  "$SANDMAN" serve --backend kubernetes --kube-api "$K8S_SERVER" --kube-ca-file "$K8S_CA" \
    --kube-token-file "$TOKEN_FILE" --auth none --bind 127.0.0.1 --port "$API_PORT" \
    --db "$STATE/sandman.db" --image "$IMAGE" --ssh-host 127.0.0.1 \
    --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" --memory 512m --cpus 0.5 >>"$DAEMON_LOG" 2>&1 </dev/null &
  DPID=$!
  local i
  for i in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null && return 0
    kill -0 "$DPID" 2>/dev/null || { show_logs; fail "sandman exited during start-up"; }
    sleep 0.1
  done
  show_logs
  fail "sandman did not answer /healthz"
}
CODE= BODY=
api() {
  local args=(-sS -o "$K8S_TMP/resp" -w '%{http_code}' --max-time 120 -X "$1" "http://127.0.0.1:$API_PORT$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}" 2>"$K8S_TMP/curl.err") || CODE=000
  BODY=$(cat "$K8S_TMP/resp" 2>/dev/null)
}
create() {
  api POST /api/v1/sessions "{\"user_id\":\"$1\"${2:+,$2}}"
  [ "$CODE" = 201 ] || { show_logs; fail "create $1: HTTP $CODE: $BODY"; }
  SID=$(jq -r .session_id <<<"$BODY")
}
# fits RESOURCE: how many more sessions of it fit now (/gpus/available).
fits() { api GET /api/v1/gpus/available; jq -r --arg r "$1" '[.fits_now[] | select(.resource == $r) | .fits] | add // 0' <<<"$BODY"; }
node_field() { api GET "/api/v1/gpu-nodes/$1"; jq -r "$2" <<<"$BODY"; }
fits_is() { [ "$(fits "$1")" = "$2" ]; }
node_is() { [ "$(node_field "$1" "$2")" = "$3" ]; }
proposal_state() { api GET "/api/v1/gpu-nodes/$1/mig-layout"; jq -r '.proposals[0].state' <<<"$BODY"; }
proposal_is() { [ "$(proposal_state "$1")" = "$2" ]; }
nodes_cli() { "$SANDMAN" nodes --server "http://127.0.0.1:$API_PORT" --token-file "$K8S_TMP/no-token" "$@"; }

start_daemon
note "sandman serve --backend kubernetes, as ServiceAccount sandman"

note "GET /api/v1/gpu-nodes"
api GET /api/v1/gpu-nodes
assert_eq "$CODE" 200 "GET /gpu-nodes"
assert_eq "$(jq -r '[.nodes[].name] | join(",")' <<<"$BODY")" gpu-a,gpu-b,gpu-c "GPU nodes"
assert_eq "$(jq -r .gpus <<<"$BODY")" 3 "GPUs"
A=$(jq -c '.nodes[] | select(.name == "gpu-a")' <<<"$BODY")
assert_eq "$(jq -r .product <<<"$A")" "$H100" "gpu-a product"
assert_eq "$(jq -r .mig_strategy <<<"$A")" mixed "gpu-a MIG strategy"
assert_eq "$(jq -r '.resources[] | select(.resource == "nvidia.com/mig-1g.10gb") | "\(.capacity)/\(.allocatable)/\(.in_use)"' <<<"$A")" \
  2/2/0 "gpu-a mig-1g.10gb capacity/allocatable/in use"
assert_eq "$(jq -r '.mig_profiles["3g.40gb"].count' <<<"$A")" 1 "gpu-a GFD nvidia.com/mig-3g.40gb.count"
assert_eq "$(jq -r '"\(.ready) \(.cordoned) \(.mig_config) \(.mig_config_state)"' <<<"$A")" \
  "true false all-balanced success" "gpu-a ready, cordoned, mig.config, state"
assert_eq "$(node_field gpu-c '.resources[0] | "\(.resource) \(.allocatable)"')" "nvidia.com/gpu 1" "gpu-c whole GPU"
api GET /api/v1/gpu-nodes/no-such-node
assert_eq "$CODE" 404 "unknown node"

note "sandman nodes ls"
OUT=$(nodes_cli ls) || fail "sandman nodes ls: $OUT"
echo "$OUT" | sed 's/^/   | /'
assert_match "$OUT" "gpu-a +$H100 +mixed +mig-1g.10gb +2 +2 +0 +2 +yes +no +all-balanced \(success\)" "gpu-a row"
assert_contains "$OUT" "3 nodes, 3 GPUs" "summary"

note "/gpus and /gpus/available for the cluster: what fits now"
api GET /api/v1/gpus
assert_eq "$(jq -r '"\(.backend) \(.count) \(.gpus[0].node) \(.gpus[0].uuid)"' <<<"$BODY")" "kubernetes 3 gpu-a null" "/gpus"
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 9 "1g.10gb fits (2 on gpu-a + 7 on gpu-b)"
assert_eq "$(fits nvidia.com/gpu)" 1 "whole GPUs fit"
api GET /api/v1/gpus/available
assert_eq "$(jq -r '.fits_now[] | select(.resource == "nvidia.com/mig-1g.10gb") | [.nodes[] | "\(.node)=\(.fits)"] | join(",")' <<<"$BODY")" \
  gpu-a=2,gpu-b=7 "1g.10gb per node"
api GET /api/v1/gpus/profiles
assert_eq "$(jq -r '.profiles[] | select(.name == "1g.10gb") | .instance_count' <<<"$BODY")" 9 "/gpus/profiles 1g.10gb"

note "alice: a 1g.10gb session on the H100"
create alice "\"mig_profile\":\"1g.10gb\",\"gpu_product\":\"$H100\""
ALICE=$SID
k8s_wait "alice's slice in use on gpu-a" 20 node_is gpu-a '.resources[] | select(.resource == "nvidia.com/mig-1g.10gb") | .in_use' 1
assert_eq "$(node_field gpu-a '.sessions | join(",")')" "$ALICE" "gpu-a's sessions"
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 8 "1g.10gb fits after alice"

note "kubectl cordon gpu-b / uncordon, seen through the node watch"
k8s_kubectl cordon gpu-b >/dev/null || fail "cordon"
k8s_wait "gpu-b cordoned in /gpu-nodes" 10 node_is gpu-b .cordoned true
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 1 "1g.10gb fits with gpu-b cordoned"
api GET /api/v1/gpus/available
assert_contains "$(jq -r '.nodes_not_taking_sessions[0].reason' <<<"$BODY")" "cordoned" "why gpu-b takes none"
assert_contains "$(nodes_cli ls)" "takes no sessions: cordoned" "nodes ls shows it"
k8s_kubectl uncordon gpu-b >/dev/null || fail "uncordon"
k8s_wait "gpu-b uncordoned" 10 fits_is nvidia.com/mig-1g.10gb 8
ok "uncordoned: 8 fit again"

note "gpu-b in maintenance (a sandman.io/status annotation): no session lands there; metadata edits"
api PATCH /api/v1/gpu-nodes/gpu-b/status '{"status":"maintenance","reason":"disk swap","by":"ops"}'
assert_eq "$CODE" 200 "PATCH gpu-b status"
assert_eq "$(jq -r '"\(.status) \(.takes_sessions)"' <<<"$BODY")" "maintenance false" "gpu-b's answer"
assert_eq "$(k8s_kubectl get node gpu-b -o jsonpath='{.metadata.annotations.sandman\.io/status}')" maintenance \
  "the node's sandman.io/status annotation"
k8s_wait "gpu-b in maintenance through the watch" 10 node_is gpu-b .status maintenance
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 1 "1g.10gb fits with gpu-b in maintenance"
B_PRODUCT=$(node_field gpu-b .product)
api POST /api/v1/sessions "{\"user_id\":\"carol\",\"mig_profile\":\"1g.10gb\",\"gpu_product\":\"$B_PRODUCT\"}"
assert_eq "$CODE" 409 "a session for gpu-b's model while it is in maintenance"
assert_contains "$(jq -r .error <<<"$BODY")" "gpu-b: node gpu-b is in maintenance (disk swap)" "the refusal names node and status"
api PUT /api/v1/gpu-nodes/gpu-b '{"cluster":"lab-b","description":"the A100 box","labels":{"rack":"r7"}}'
assert_eq "$CODE" 200 "PUT gpu-b metadata"
assert_eq "$(k8s_kubectl get node gpu-b -o jsonpath='{.metadata.annotations.sandman\.io/cluster}')" lab-b "cluster annotation"
api PUT /api/v1/gpu-nodes/gpu-b '{"colour":"red"}'
assert_eq "$CODE" 400 "unknown field"
k8s_wait "gpu-b's cluster through the watch" 10 node_is gpu-b .cluster lab-b
api GET "/api/v1/gpu-nodes?cluster=lab-b&status=maintenance"
assert_eq "$(jq -r '[.nodes[].name] | join(",")' <<<"$BODY")" gpu-b "list by cluster and status"
api GET "/api/v1/gpu-nodes?limit=2"
assert_eq "$(jq -r '.nodes | length' <<<"$BODY")/$(jq -r .total <<<"$BODY")" 2/3 "a page of two"
api POST /api/v1/gpu-nodes '{"name":"gpu-z"}'
assert_eq "$CODE" 400 "create a node on Kubernetes"
api DELETE /api/v1/gpu-nodes/gpu-b
assert_eq "$CODE" 400 "delete a cluster node"
api POST /api/v1/gpu/devices/GPU-x/mig '["1g.10gb"]'
assert_eq "$CODE" 400 "MIG create on Kubernetes"
assert_contains "$(jq -r .error <<<"$BODY")" "mig-layout" "points at the layout proposals"
api GET /api/v1/dashboard/stats/clusters
assert_contains "$(jq -r '[.clusters[].cluster] | join(",")' <<<"$BODY")" lab-b "dashboard clusters"
api GET /api/v1/gpu-nodes/recent
assert_eq "$(jq -r '[.changes[] | select(.node == "gpu-b")] | length' <<<"$BODY")" 2 "recently changed"
OUT=$(nodes_cli status gpu-b active) || fail "sandman nodes status: $OUT"
k8s_wait "gpu-b active again" 10 fits_is nvidia.com/mig-1g.10gb 8
ok "gpu-b active: 8 fit again"

note "MIG layout all-1g.10gb for gpu-a: proposed, refused while alice runs there"
OUT=$(nodes_cli mig-layout propose gpu-a all-1g.10gb --by admin) || fail "propose: $OUT"
echo "   | $OUT"
assert_eq "$(proposal_state gpu-a)" proposed "proposal state"
api POST /api/v1/gpu-nodes/gpu-a/mig-layout/approve '{"by":"admin"}'
assert_eq "$CODE" 409 "approve while alice runs"
assert_contains "$(jq -r .error <<<"$BODY")" "$ALICE" "the refusal names alice's session"
assert_eq "$(node_field gpu-a .held_by_sandman)" null "gpu-a not held after the refusal"
assert_eq "$(node_field gpu-a .mig_config)" all-balanced "label untouched"

note "alice's session ends; approved: held, pending, success, the new layout seen, let go"
api DELETE "/api/v1/sessions/$ALICE"
k8s_wait "alice's pod gone" 30 node_is gpu-a '.sessions | length' 0
OUT=$(nodes_cli mig-layout approve gpu-a --by admin) || { show_logs; fail "approve: $OUT"; }
echo "   | $OUT"
assert_eq "$(k8s_kubectl get node gpu-a -o jsonpath='{.metadata.labels.nvidia\.com/mig\.config}')" all-1g.10gb "the node's label"
assert_contains "$(node_field gpu-a .held_by_sandman)" "being applied" "gpu-a held"
api POST /api/v1/sessions "{\"user_id\":\"bob\",\"mig_profile\":\"1g.10gb\",\"gpu_product\":\"$H100\"}"
assert_eq "$CODE" 409 "bob's H100 session while gpu-a is held"
assert_contains "$(jq -r .error <<<"$BODY")" "outside the nodes Sandman holds (gpu-a: MIG layout" "bob's error"
k8s_wait "state pending seen" 10 proposal_is gpu-a pending
k8s_wait "state applied" 30 proposal_is gpu-a applied
assert_eq "$(node_field gpu-a '"\(.mig_config_state) \(.held_by_sandman) \(.takes_sessions)"')" "success null true" "gpu-a after success"
assert_eq "$(node_field gpu-a '[.resources[] | "\(.resource)=\(.allocatable)"] | join(",")')" "nvidia.com/mig-1g.10gb=7" \
  "gpu-a's resources in the new layout"
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 14 "1g.10gb fits (7 + 7)"
create bob "\"mig_profile\":\"1g.10gb\",\"gpu_product\":\"$H100\""
BOB=$SID
ok "bob's H100 session runs once gpu-a is let go"
api DELETE "/api/v1/sessions/$BOB"
k8s_wait "bob's pod gone" 30 node_is gpu-a '.sessions | length' 0

note "a layout the GPUs cannot take (all-1g.5gb on an H100) ends failed; the node stays held until released"
nodes_cli mig-layout propose gpu-a all-1g.5gb >/dev/null || fail "propose all-1g.5gb"
nodes_cli mig-layout approve gpu-a >/dev/null || { show_logs; fail "approve all-1g.5gb"; }
k8s_wait "state failed" 30 proposal_is gpu-a failed
assert_contains "$(node_field gpu-a .held_by_sandman)" "failed" "gpu-a still held"
assert_eq "$(node_field gpu-a .takes_sessions)" false "gpu-a takes no sessions"
OUT=$(nodes_cli mig-layout show gpu-a)
echo "$OUT" | sed 's/^/   | /'
assert_contains "$OUT" "all-1g.5gb" "show lists the failed proposal"

note "the cluster's node, GPU, session, telemetry, cost and dashboard answers match /openapi.json (property-based, reads only)"
OUT=$(/usr/bin/python3 "$K8S_LIB_DIR/../api/openapi_check.py" --base-url "http://127.0.0.1:$API_PORT" --no-auth-check \
  --strict-status --examples 10 --time-budget 60 \
  --only '^\S+ GET /api/v1/(gpu-nodes|gpus|mig-layouts|dashboard|gpu/|sessions|metrics|cost|advice/rightsizing)' 2>&1) ||
  { echo "$OUT" | tail -40; fail "a cluster answer contradicts /openapi.json"; }
echo "$OUT" | tail -3 | sed 's/^/   | /'
ok "no contradiction"

note "proposals and the hold survive a daemon restart"
stop_daemon
start_daemon
assert_contains "$(node_field gpu-a .held_by_sandman)" "failed" "gpu-a held after the restart"
api GET /api/v1/mig-layouts
assert_eq "$(jq -r '[.proposals[].state] | join(",")' <<<"$BODY")" failed,applied "proposals after the restart"
nodes_cli mig-layout release gpu-a >/dev/null || fail "release"
assert_eq "$(node_field gpu-a .held_by_sandman)" null "gpu-a released"
assert_eq "$(fits nvidia.com/mig-1g.10gb)" 14 "1g.10gb fits after the release"
grep -q "mig_layout" "$DAEMON_LOG" && ok "the daemon's log records the changes"
stop_daemon
ok "daemon stopped"

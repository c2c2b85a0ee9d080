#!/usr/bin/env bash
# k8s: node agents. `sandman agent` runs as a process on this machine for each of three fake GPU
# nodes, against the NVML simulator (a machine file per node, distinct GPU UUIDs), and registers
# as that node's agent pod: a Pod object bound to the node, labelled as the DaemonSet's, whose
# status (Running, Ready, podIP 127.0.0.1) the test sets through the status subresource with a
# port annotation per agent (the fake kubelet ignores these pods). `sandman serve --backend
# kubernetes` finds them through the API server with the shipped RBAC and merges their snapshots:
# every node's GPUs in /metrics and the telemetry API; a session pod's MIG device attributed to
# its session (the simulator reports a CUDA process on it whose pid maps, through a fake /proc
# tree, to the session pod's UID); an agent killed is reported missing within a few intervals
# while the other nodes keep reporting, and reported back once restarted. The agents ask for a
# shared token (read-only endpoints; 401 without it).
# Usage: agent_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SANDMAN=${1:?usage: agent_test.sh <path-to-sandman>}
SANDMAN=$(cd "$(dirname "$SANDMAN")" && pwd)/$(basename "$SANDMAN")
NVML_SIM=$(dirname "$SANDMAN")/libsandman-nvml-sim.so
[ -f "$NVML_SIM" ] || fail "NVML simulator missing at $NVML_SIM (cmake --build build --target sandman-nvml-sim)"
k8s_test_init
for t in docker ssh-keygen; do command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is missing"; done
docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required (the fake kubelet runs session pods there)"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"
DEPLOY=$K8S_REPO/deploy/kubernetes
FIXTURES=$K8S_REPO/tests/fixtures/nvml-sim
NODES=(gpu-0 gpu-1 gpu-2)
INTERVAL_S=1
AGENT_NS=sandman-agents

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
for f in namespaces.yaml serviceaccounts.yaml rbac.yaml networkpolicy.yaml; do
  k8s_kubectl apply --validate=strict -f "$DEPLOY/$f" >/dev/null || fail "apply $f"
done

# Per node: one A100 80 GB with 3g.40gb, 2g.20gb and 1g.10gb made (mixed-host.json's GPU 0),
# its UUID made the node's own.
i=0
for n in "${NODES[@]}"; do
  mkdir -p "$K8S_TMP/$n"
  jq --arg u "GPU-4f1b2c3d-1a2b-4c5d-8e9f-0a1b2c3d4e5$i" '.gpus = [.gpus[0] | .uuid = $u]' \
    "$FIXTURES/mixed-host.json" >"$K8S_TMP/$n/machine.json" || fail "fixture for $n"
  k8s_fake_nodes --node "name=$n,fixture=$K8S_TMP/$n/machine.json,mig=fixture" >/dev/null || fail "fake node $n"
  i=$((i + 1))
done
k8s_start_kubelet "$(IFS=,; echo "${NODES[*]}")"
note "fake nodes ${NODES[*]} (each: A100 80 GB with 3g.40gb + 2g.20gb + 1g.10gb); kubelet on $K8S_NETWORK"

# The agents' shared token, and the fake /proc tree they map pids through.
AGENT_TOKEN=$K8S_TMP/agent.token
(umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$AGENT_TOKEN")
PROC=$K8S_TMP/proc
mkdir -p "$PROC"

declare -A APORT APID
for n in "${NODES[@]}"; do APORT[$n]=$(k8s_free_port) || fail "no free port"; done
start_agent() { # NODE
  local n=$1 i
  SANDMAN_NVML_SIM_CONFIG=$K8S_TMP/$n/machine.json "$SANDMAN" agent --node "$n" --nvml-library "$NVML_SIM" \
    --bind 127.0.0.1 --port "${APORT[$n]}" --interval "${INTERVAL_S}s" --proc-root "$PROC" \
    --token-file "$AGENT_TOKEN" >>"$K8S_TMP/agent-$n.log" 2>&1 </dev/null &
  APID[$n]=$!
  for i in $(seq 100); do
    [ "$(curl -s --max-time 1 "http://127.0.0.1:${APORT[$n]}/healthz")" = ok ] && return 0
    kill -0 "${APID[$n]}" 2>/dev/null || { tail -n 20 "$K8S_TMP/agent-$n.log"; fail "agent $n exited"; }
    sleep 0.1
  done
  fail "agent $n did not answer /healthz"
}
stop_agents() { local n; for n in "${!APID[@]}"; do k8s_stop_pid "${APID[$n]}" 5; done; }
K8S_CLEANUP+=(stop_agents)

# The agent pod object of NODE, as the DaemonSet would make it, bound to the node; its status
# as the kubelet would report it, through the status subresource (admin).
register_agent_pod() { # NODE
  local n=$1
  k8s_kubectl apply -f - >/dev/null <<EOY || fail "agent pod for $n"
apiVersion: v1
kind: Pod
metadata:
  name: sandman-agent-$n
  namespace: $AGENT_NS
  labels:
    app.kubernetes.io/name: sandman
    app.kubernetes.io/component: agent
    sandman.test/kubelet: ignore
  annotations:
    sandman.io/agent-port: "${APORT[$n]}"
spec:
  nodeName: $n
  hostPID: true
  automountServiceAccountToken: false
  containers:
  - name: agent
    image: sandman:latest
EOY
  local now
  now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  k8s_kubectl patch pod "sandman-agent-$n" -n "$AGENT_NS" --subresource=status --type=merge -p "{\"status\":{
    \"phase\":\"Running\",\"podIP\":\"127.0.0.1\",\"podIPs\":[{\"ip\":\"127.0.0.1\"}],\"hostIP\":\"127.0.0.1\",
    \"conditions\":[{\"type\":\"Ready\",\"status\":\"True\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null ||
    fail "status of the agent pod for $n"
}
for n in "${NODES[@]}"; do
  start_agent "$n"
  register_agent_pod "$n"
done
note "agents: $(for n in "${NODES[@]}"; do printf '%s@127.0.0.1:%s ' "$n" "${APORT[$n]}"; done)"

note "each agent is read-only and asks for its token (but not on /healthz)"
A0=http://127.0.0.1:${APORT[gpu-0]}
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$A0/api/v1/agent/snapshot")" 401 "snapshot without the token"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$A0/metrics")" 401 "/metrics without the token"
AUTH=(-H "Authorization: Bearer $(cat "$AGENT_TOKEN")")
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" -X DELETE "$A0/api/v1/agent/snapshot")" 405 "DELETE"
SNAP=$(curl -s "${AUTH[@]}" "$A0/api/v1/agent/snapshot")
assert_eq "$(jq -r .node <<<"$SNAP")" gpu-0 "the agent's node"
assert_eq "$(jq '.instances | length' <<<"$SNAP")" 3 "gpu-0's MIG devices"
assert_contains "$(curl -s "${AUTH[@]}" "$A0/metrics")" 'Hostname="gpu-0",node="gpu-0"' "the agent's own /metrics"

TOKEN_FILE=$K8S_TMP/sandman.token
k8s_sandman_token_file "$TOKEN_FILE" 2h || fail "no token for ServiceAccount sandman"
API_PORT=$(k8s_free_port) || fail "no free port"
GW_PORT=$(k8s_free_port) || fail "no free port"
STATE=$K8S_TMP/state
mkdir -p "$STATE" "$K8S_TMP/ws"
DAEMON_LOG=$K8S_TMP/sandman.log
DPID=
stop_daemon() { k8s_stop_pid "$DPID" 10; DPID=; }
show_daemon_log() { [ -s "$DAEMON_LOG" ] && { echo "--- sandman log (last 40 lines) ---"; tail -n 40 "$DAEMON_LOG"; }; }
K8S_CLEANUP+=(stop_daemon)
"$SANDMAN" serve --backend kubernetes --kube-api "$K8S_SERVER" --kube-ca-file "$K8S_CA" \
  --kube-token-file "$TOKEN_FILE" --kube-agent-token-file "$AGENT_TOKEN" --telemetry-interval "${INTERVAL_S}s" \
  --auth none --bind 127.0.0.1 --port "$API_PORT" --db "$STATE/sandman.db" --workspace-root "$K8S_TMP/ws" \
  --image "$IMAGE" --ssh-host 127.0.0.1 --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" \
  --memory 512m --cpus 0.5 >>"$DAEMON_LOG" 2>&1 </dev/null &
DPID=$!
for i in $(seq 300); do
  curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null && break
  kill -0 "$DPID" 2>/dev/null || { show_daemon_log; fail "sandman exited during start-up"; }
  sleep 0.1
done
note "sandman serve --backend kubernetes (ServiceAccount sandman, shipped RBAC), telemetry every ${INTERVAL_S}s"

CODE= BODY=
api() {
  local args=(-sS -o "$K8S_TMP/resp" -w '%{http_code}' --max-time 120 -X "$1" "http://127.0.0.1:$API_PORT$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}" 2>"$K8S_TMP/curl.err") || CODE=000
  BODY=$(cat "$K8S_TMP/resp" 2>/dev/null)
}
realtime() { api GET /api/v1/metrics/realtime; [ "$CODE" = 200 ]; }
metrics() { curl -s "http://127.0.0.1:$API_PORT/metrics"; }
all_up() { realtime && [ "$(jq '[.nodes[] | select(.agent_up)] | length' <<<"$BODY")" = 3 ]; }
k8s_wait "all three agents up in the daemon's telemetry" 30 all_up
assert_eq "$(jq '.gpus | length' <<<"$BODY")" 3 "GPUs in /metrics/realtime"
assert_eq "$(jq '.instances | length' <<<"$BODY")" 9 "MIG devices in /metrics/realtime"
assert_eq "$(jq -r '[.gpus[].node] | join(",")' <<<"$BODY")" gpu-0,gpu-1,gpu-2 "the GPUs' nodes"
M=$(metrics)
for n in "${NODES[@]}"; do
  assert_contains "$M" "sandman_agent_up{node=\"$n\"} 1" "/metrics"
  assert_contains "$M" "Hostname=\"$n\",node=\"$n\"" "/metrics GPU series of $n"
done
assert_eq "$(grep -c '^gpu_temperature{' <<<"$M")" 3 "gpu_temperature series"

note "alice's 1g.10gb session: a CUDA process on its MIG device maps to her pod through the fake /proc"
api POST /api/v1/sessions '{"user_id":"alice","mig_profile":"1g.10gb"}'
[ "$CODE" = 201 ] || { show_daemon_log; fail "create alice: HTTP $CODE: $BODY"; }
SID=$(jq -r .session_id <<<"$BODY")
POD_UID=$(k8s_kubectl get pod "sess-$SID" -n sandman-sessions -o jsonpath='{.metadata.uid}')
NODE=$(k8s_kubectl get pod "sess-$SID" -n sandman-sessions -o jsonpath='{.spec.nodeName}')
[ -n "$POD_UID" ] && [ -n "$NODE" ] || fail "alice's pod: uid '$POD_UID', node '$NODE'"
ok "session $SID: pod sess-$SID ($POD_UID) on $NODE"
# The MIG device of the 1g.10gb profile on that node, as its agent reports it.
MIG=$(curl -s "${AUTH[@]}" "http://127.0.0.1:${APORT[$NODE]}/api/v1/agent/snapshot" |
  jq -r '.instances[] | select(.profile == "1g.10gb") | .uuid')
[[ "$MIG" == MIG-* ]] || fail "no 1g.10gb MIG device on $NODE's agent"
PID_IN_POD=424242
mkdir -p "$PROC/$PID_IN_POD"
printf '0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod%s.slice/cri-containerd-0123abcd.scope\n' \
  "${POD_UID//-/_}" >"$PROC/$PID_IN_POD/cgroup"
jq --arg m "$MIG" --argjson pid "$PID_IN_POD" \
  '.gpus[0].telemetry.processes = [{"pid": $pid, "used_memory_mib": 2048, "mig": $m}]' \
  "$K8S_TMP/$NODE/machine.json" >"$K8S_TMP/$NODE/machine.json.new" && mv "$K8S_TMP/$NODE/machine.json.new" "$K8S_TMP/$NODE/machine.json"
held() { realtime && [ "$(jq -r --arg m "$MIG" '.instances[] | select(.uuid == $m) | .session_id' <<<"$BODY")" = "$SID" ]; }
k8s_wait "the MIG device attributed to alice's session" 20 held
DEV=$(jq -c --arg m "$MIG" '.instances[] | select(.uuid == $m)' <<<"$BODY")
assert_eq "$(jq -r .user_id <<<"$DEV")" alice "the device's user"
assert_eq "$(jq -r .node <<<"$DEV")" "$NODE" "the device's node"
assert_eq "$(jq -r .pod_uid <<<"$DEV")" "$POD_UID" "the device's pod"
assert_eq "$(jq -r .compute_processes <<<"$DEV")" 1 "its CUDA processes"
assert_contains "$(metrics | grep '^gpu_compute_processes{' | grep "$MIG")" "session_id=\"$SID\",user_id=\"alice\",node=\"$NODE\"} 1" \
  "/metrics for alice's device"

# Another node than alice's, to kill first.
for n in "${NODES[@]}"; do [ "$n" != "$NODE" ] && { OTHER=$n; break; }; done

missing() { # NODE: its agent reported missing
  realtime && [ "$(jq -r --arg n "$1" '.nodes[] | select(.node == $n) | .agent_up' <<<"$BODY")" = false ]
}
note "$OTHER's agent killed (-9): reported missing within a few intervals; the others keep reporting"
t0=$(date +%s.%N)
{ kill -9 "${APID[$OTHER]}"; wait "${APID[$OTHER]}"; } 2>/dev/null
k8s_wait "$OTHER reported missing" 10 missing "$OTHER"
t1=$(date +%s.%N)
ok "missing after $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') s (interval ${INTERVAL_S} s)"
assert_match "$(jq -r --arg n "$OTHER" '.nodes[] | select(.node == $n) | .error' <<<"$BODY")" "onnect" "why"
assert_eq "$(jq -r '.backend_ok' <<<"$BODY")" true "telemetry as a whole"
assert_eq "$(jq -r '[.gpus[].node] | join(",")' <<<"$BODY")" "$(printf '%s\n' "${NODES[@]}" | grep -vx "$OTHER" | paste -sd,)" \
  "nodes with GPUs in the snapshot"
assert_eq "$(jq -r --arg m "$MIG" '.instances[] | select(.uuid == $m) | .session_id' <<<"$BODY")" "$SID" \
  "alice's device, on a node still reporting"
assert_eq "$(jq -r '.lost_gpus | length' <<<"$BODY")" 0 "GPUs declared lost (a missing agent says nothing of them)"
M=$(metrics)
assert_contains "$M" "sandman_agent_up{node=\"$OTHER\"} 0" "/metrics"
assert_contains "$M" "sandman_agent_up{node=\"$NODE\"} 1" "/metrics"
grep -q "node agent missing" "$DAEMON_LOG" && ok "the daemon logged the missing agent" || fail "no log line for the missing agent"

note "alice's node's agent killed too: her session is unobserved, not idle; then both restarted"
{ kill -9 "${APID[$NODE]}"; wait "${APID[$NODE]}"; } 2>/dev/null
k8s_wait "$NODE reported missing" 10 missing "$NODE"
assert_eq "$(jq -r '.unobserved_sessions | join(",")' <<<"$BODY")" "$SID" "unobserved sessions"
assert_contains "$(metrics)" "sandman_sessions_unobserved 1" "/metrics"
api GET "/api/v1/sessions/$SID"
assert_eq "$(jq -r .status <<<"$BODY")" running "alice's session"
start_agent "$OTHER"
start_agent "$NODE"
k8s_wait "all three agents back" 15 all_up
k8s_wait "alice's device attributed again" 10 held
assert_eq "$(jq -r '.unobserved_sessions | length' <<<"$BODY")" 0 "unobserved sessions"
assert_eq "$(jq '.gpus | length' <<<"$BODY")" 3 "GPUs"

note "an agent pod deleted (the DaemonSet rolls it): the node is reported as having no agent"
k8s_kubectl delete pod "sandman-agent-$OTHER" -n "$AGENT_NS" --grace-period=0 --force >/dev/null 2>&1 ||
  fail "delete the agent pod"
no_pod() { missing "$OTHER" && [ "$(jq -r --arg n "$OTHER" '.nodes[] | select(.node == $n) | .error' <<<"$BODY")" = "no agent pod on the node" ]; }
k8s_wait "$OTHER without an agent pod" 10 no_pod
register_agent_pod "$OTHER"
k8s_wait "its new pod found" 15 all_up

api DELETE "/api/v1/sessions/$SID"
assert_eq "$CODE" 200 "delete alice's session"
stop_daemon
ok "daemon stopped"

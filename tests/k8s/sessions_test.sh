#!/usr/bin/env bash
# k8s: `sandman serve --backend kubernetes` end to end against a real API server, scheduler and
# controller-manager, with the shipped namespaces, ServiceAccounts and RBAC and a token bound only
# to them. Fake GPU nodes and the fake kubelet (Docker) run the pods. Checks: a session is a
# restricted pod with its Secret and the user's PVC; `ssh alice@gateway` lands in it through the
# gateway (the pod IP from the watch cache); a session no node has room for
# fails at once with the scheduler's reason; a missing image is a 400; the API server restarted
# under live sessions (the watch resumes: nothing lost, creates work); a provoked 410 (the cache
# relists: a pod deleted behind Sandman's back then ends its session; /metrics counts the relist); a
# deleted session's pod and Secret go, its workspace stays for the next session.
# Usage: sessions_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SANDMAN=${1:?usage: sessions_test.sh <path-to-sandman>}
SANDMAN=$(cd "$(dirname "$SANDMAN")" && pwd)/$(basename "$SANDMAN")
k8s_test_init
for t in docker ssh ssh-keygen promtool; do command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is missing"; done
docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required (the fake kubelet runs pods there)"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"
DEPLOY=$K8S_REPO/deploy/kubernetes
NS=sandman-sessions
PRODUCT=NVIDIA-H100-80GB-HBM3

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
# What an admin installs once (the daemon's own Deployment is not run here: it is this process).
for f in namespaces.yaml serviceaccounts.yaml rbac.yaml networkpolicy.yaml; do
  k8s_kubectl apply --validate=strict -f "$DEPLOY/$f" >/dev/null || fail "apply $f"
done
k8s_fake_nodes --node name=gpu-h100,fixture=mixed-host.json,gpus=2,mig=all-balanced >/dev/null ||
  fail "fake_nodes.py failed"
k8s_start_kubelet gpu-h100
note "fake node gpu-h100 (2 x 1g.10gb, 2g.20gb, 3g.40gb); kubelet on Docker network $K8S_NETWORK"

TOKEN_FILE=$K8S_TMP/sandman.token
k8s_token sandman sandman 2h >"$TOKEN_FILE" || fail "no token for ServiceAccount sandman"
chmod 600 "$TOKEN_FILE"

API_PORT=$(k8s_free_port) || fail "no free port"
GW_PORT=$(k8s_free_port) || fail "no free port"
STATE=$K8S_TMP/state
mkdir -p "$STATE" "$K8S_TMP/ws"
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
show_daemon_log() { [ -s "$DAEMON_LOG" ] && { echo "--- sandman log (last 40 lines) ---"; tail -n 40 "$DAEMON_LOG"; }; }
K8S_CLEANUP+=(stop_daemon)
start_daemon() {
  "$SANDMAN" serve --backend kubernetes --kube-api "$K8S_SERVER" --kube-ca-file "$K8S_CA" \
    --kube-token-file "$TOKEN_FILE" --auth none --bind 127.0.0.1 --port "$API_PORT" \
    --db "$STATE/sandman.db" --workspace-root "$K8S_TMP/ws" --image "$IMAGE" \
    --allowed-images "$IMAGE,sandman-no-such-image:1" --ssh-host 127.0.0.1 \
    --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" --memory 512m --cpus 0.5 >>"$DAEMON_LOG" 2>&1 </dev/null &
  DPID=$!
  local i
  for i in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$API_PORT/healthz" 2>/dev/null && return 0
    kill -0 "$DPID" 2>/dev/null || { show_daemon_log; fail "sandman exited during start-up"; }
    sleep 0.1
  done
  show_daemon_log
  fail "sandman did not answer /healthz"
}

CODE= BODY=
# api METHOD PATH [JSON]: sets CODE and BODY.
api() {
  local args=(-sS -o "$K8S_TMP/resp" -w '%{http_code}' --max-time 120 -X "$1" "http://127.0.0.1:$API_PORT$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}" 2>"$K8S_TMP/curl.err") || CODE=000
  BODY=$(cat "$K8S_TMP/resp" 2>/dev/null)
}
# create USER JSON-MEMBERS: expects 201; sets SID and KEY (the private key file).
create() {
  api POST /api/v1/sessions "{\"user_id\":\"$1\"${2:+,$2}}"
  [ "$CODE" = 201 ] || { show_daemon_log; fail "create $1: HTTP $CODE: $BODY"; }
  SID=$(jq -r .session_id <<<"$BODY")
  KEY=$K8S_TMP/$1.key
  jq -r .ssh_private_key <<<"$BODY" >"$KEY"
  chmod 600 "$KEY"
}
SSH_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=10)
sshg() { local u=$1 k=$2; shift 2; timeout 60 ssh "${SSH_OPTS[@]}" -i "$k" -p "$GW_PORT" "$u@127.0.0.1" "$@" </dev/null; }
pod_of() { echo "sess-$1"; }
kget() { k8s_kubectl get "$@" -n "$NS" 2>/dev/null; }
gone() { ! k8s_kubectl get "$1" -n "$NS" >/dev/null 2>&1; }
# metric NAME: the value of an unlabelled series in /metrics (empty if absent).
metric() { curl -fsS --max-time 10 "http://127.0.0.1:$API_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# metric_above NAME N: whether it is above N.
metric_above() { local v; v=$(metric "$1"); [ -n "$v" ] && awk -v v="$v" -v n="$2" 'BEGIN { exit !(v > n) }'; }

start_daemon
note "sandman serve --backend kubernetes, as ServiceAccount sandman (shipped Role + ClusterRole only)"
assert_eq "$(metric sandman_kube_watch_synced)" 1 "sandman_kube_watch_synced"
metric_above sandman_kube_watch_lists_total 0 || fail "sandman_kube_watch_lists_total: $(metric sandman_kube_watch_lists_total)"
ok "the watch cache's series are in /metrics"

note "alice: a 1g.10gb session on an $PRODUCT"
t0=$(date +%s.%N)
create alice "\"mig_profile\":\"1g.10gb\",\"gpu_product\":\"$PRODUCT\""
t1=$(date +%s.%N)
ALICE=$SID ALICE_KEY=$KEY
assert_eq "$(jq -r .status <<<"$BODY")" running "alice's status"
assert_eq "$(jq -r .ssh_port <<<"$BODY")" "$GW_PORT" "alice's ssh_port (the gateway's)"
assert_eq "$(jq -r .ssh_command <<<"$BODY")" "ssh -p $GW_PORT alice@127.0.0.1" "alice's ssh_command"
assert_eq "$(jq -r .workspace <<<"$BODY")" "persistentvolumeclaim/ws-alice (namespace $NS)" "alice's workspace"
assert_eq "$(find "$STATE/host-workspaces" "$K8S_TMP/ws" -mindepth 1 | wc -l)" 0 "workspace dirs made on the daemon's host"
ok "ready in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}') s"
POD=$(pod_of "$ALICE")
assert_eq "$(kget pod "$POD" -o jsonpath='{.status.phase}')" Running "pod $POD phase"
assert_eq "$(kget pod "$POD" -o jsonpath='{.spec.containers[0].resources.limits.nvidia\.com/mig-1g\.10gb}')" 1 \
  "pod's nvidia.com/mig-1g.10gb limit"
assert_eq "$(kget pod "$POD" -o jsonpath='{.spec.nodeSelector.nvidia\.com/gpu\.product}')" "$PRODUCT" "nodeSelector"
assert_eq "$(kget secret "$POD-ssh" -o jsonpath='{.metadata.ownerReferences[0].name}')" "$POD" "secret owner"
assert_eq "$(kget secret "$POD-ssh" -o jsonpath='{.immutable}')" true "secret immutable"
assert_eq "$(kget pvc ws-alice -o jsonpath='{.spec.accessModes[0]}')" ReadWriteOnce "ws-alice access mode"

note "ssh alice@gateway lands in the pod"
OUT=$(sshg alice "$ALICE_KEY" 'id -un; echo kept > /workspace/note; touch /etc/x 2>&1 || true') ||
  { show_daemon_log; fail "ssh through the gateway failed: $OUT"; }
echo "$OUT" | sed 's/^/   | /'
assert_eq "$(sed -n 1p <<<"$OUT")" alice "login user"
assert_contains "$OUT" "Read-only file system" "the root file system"

note "bob takes the node's other 1g.10gb; carol finds none free"
create bob '"mig_profile":"1g.10gb"'
BOB=$SID
api GET "/api/v1/cost?group_by=gpu_model&step=day"
assert_eq "$(jq -c '[.totals[].gpu_model]' <<<"$BODY")" '["H100-SXM5-80GB"]' \
  "models in the cost report (bob asked for any model and is priced by his node's)"
api POST /api/v1/sessions '{"user_id":"carol","mig_profile":"1g.10gb"}'
assert_eq "$CODE" 409 "carol's create"
assert_contains "$(jq -r .error <<<"$BODY")" "no node has a free nvidia.com/mig-1g.10gb" "carol's error"
CAROL=$(jq -r '.session_id // empty' <<<"$BODY")
api GET '/api/v1/sessions?user_id=carol'
assert_eq "$(jq -r '(if type == "array" then . else .sessions end)[0].status' <<<"$BODY")" failed "carol's session"
k8s_wait "carol's unschedulable pod removed" 20 bash -c "[ -z \"\$($K8S_BIN/kubectl --kubeconfig $K8S_KUBECONFIG get pods -n $NS -l sandman.io/user=carol -o name 2>/dev/null)\" ]"
ok "its pod is gone"
: "$CAROL"

note "dave asks for an image no node has"
api POST /api/v1/sessions '{"user_id":"dave","image":"sandman-no-such-image:1","mig_profile":"2g.20gb"}'
assert_eq "$CODE" 400 "dave's create"
assert_contains "$(jq -r .error <<<"$BODY")" "cannot be pulled" "dave's error"

note "frank asks for a CPU session; the only node is a GPU node (tainted nvidia.com/gpu)"
api POST /api/v1/sessions '{"user_id":"frank"}'
assert_eq "$CODE" 409 "frank's create"
assert_contains "$(jq -r .error <<<"$BODY")" "untolerated taint" "frank's error"

note "the API server restarts under live sessions"
k8s_restart_apiserver || fail "API server restart"
sshg alice "$ALICE_KEY" 'cat /workspace/note' | grep -qx kept || { show_daemon_log; fail "alice's session after the restart"; }
ok "alice still reached through the gateway"
create erin '"mig_profile":"2g.20gb"'
ERIN=$SID
ok "a new session starts after the restart"
api GET "/api/v1/sessions/$ALICE"
assert_eq "$(jq -r .status <<<"$BODY")" running "alice after the restart"

note "410 Gone provoked (etcd compacted while the API server is down); then bob's pod deleted behind Sandman's back"
# (The restart above may already have cost the cache a relist: count from here.)
RELISTS=$(metric sandman_kube_watch_relists_after_gone_total)
[ -n "$RELISTS" ] || fail "no sandman_kube_watch_relists_after_gone_total in /metrics"
k8s_provoke_gone || fail "k8s_provoke_gone"
k8s_kubectl delete pod "$(pod_of "$BOB")" -n "$NS" --wait=false >/dev/null || fail "delete bob's pod"
bob_ended() { api GET "/api/v1/sessions/$BOB"; [ "$(jq -r .status <<<"$BODY")" = ended ]; }
k8s_wait "bob's session to end (periodic reconcile, 30 s)" 75 bob_ended
assert_contains "$(jq -r .end_reason <<<"$BODY")" "container" "bob's end reason"
grep -q "relist" "$DAEMON_LOG" && ok "the daemon's log shows the relist" || true
k8s_wait "sandman_kube_watch_relists_after_gone_total above $RELISTS" 30 \
  metric_above sandman_kube_watch_relists_after_gone_total "$RELISTS"
ok "/metrics: sandman_kube_watch_relists_after_gone_total $(metric sandman_kube_watch_relists_after_gone_total) (was $RELISTS)"
assert_eq "$(metric sandman_kube_watch_synced)" 1 "sandman_kube_watch_synced after the relist"
lint=$(curl -fsS --max-time 10 "http://127.0.0.1:$API_PORT/metrics" | promtool check metrics 2>&1) ||
  fail "promtool check metrics: $lint"
ok "/metrics with the Kubernetes backend is promtool-clean"
api GET "/api/v1/sessions/$ALICE"
assert_eq "$(jq -r .status <<<"$BODY")" running "alice after the 410"

note "deleting alice's session removes her pod and Secret and keeps ws-alice"
api DELETE "/api/v1/sessions/$ALICE"
assert_eq "$CODE" 200 "delete alice"
k8s_wait "pod $POD gone" 30 gone "pod/$POD"
k8s_wait "secret $POD-ssh gone" 30 gone "secret/$POD-ssh"
assert_eq "$(kget pvc ws-alice -o jsonpath='{.metadata.name}')" ws-alice "ws-alice kept"
create alice '"mig_profile":"1g.10gb"'
assert_eq "$(sshg alice "$KEY" 'cat /workspace/note')" kept "alice's workspace in her next session"
api DELETE "/api/v1/sessions/$SID"
api DELETE "/api/v1/sessions/$ERIN"
stop_daemon
ok "daemon stopped"

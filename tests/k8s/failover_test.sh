#!/usr/bin/env bash
# k8s: two replicas of `sandman serve --backend kubernetes` (same --instance, each its own SQLite
# store, API and gateway port) against a real API server, scheduler and controller-manager, with the
# shipped RBAC. Checks: one leads (Lease sandman-leader), the other follows: it serves reads from its
# mirror of the cluster and answers writes with 503 not_leader naming the leader (Retry-After);
# sessions made through the leader; the leader killed with -9; the follower takes over within 20 s
# (measured); no session lost or doubled (listed through the new leader, pods in the cluster match;
# a TTL change made before the failover kept); ssh through the new leader's gateway into a session
# made before the failover; a create sent during the handover fails with the retryable error or
# succeeds exactly once; the old leader back as a follower; a SIGTERM'd leader hands over at once.
# Usage: failover_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SANDMAN=${1:?usage: failover_test.sh <path-to-sandman>}
SANDMAN=$(cd "$(dirname "$SANDMAN")" && pwd)/$(basename "$SANDMAN")
k8s_test_init
for t in docker ssh ssh-keygen; do command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is missing"; done
docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required (the fake kubelet runs pods there)"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"
DEPLOY=$K8S_REPO/deploy/kubernetes
NS=sandman-sessions
INSTANCE=failover-$K8S_RUN

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
for f in namespaces.yaml serviceaccounts.yaml rbac.yaml networkpolicy.yaml; do
  k8s_kubectl apply --validate=strict -f "$DEPLOY/$f" >/dev/null || fail "apply $f"
done
k8s_fake_nodes --node name=gpu-h100,fixture=mixed-host.json,gpus=2,mig=all-balanced >/dev/null ||
  fail "fake_nodes.py failed"
k8s_start_kubelet gpu-h100
note "fake node gpu-h100 (per GPU: 2 x 1g.10gb, 2g.20gb, 3g.40gb); kubelet on Docker network $K8S_NETWORK"
TOKEN_FILE=$K8S_TMP/sandman.token
k8s_token sandman sandman 2h >"$TOKEN_FILE" || fail "no token for ServiceAccount sandman"
chmod 600 "$TOKEN_FILE"

# Replicas a and b: ports, state dirs, logs, pids.
declare -A API GW PID
for r in a b; do
  API[$r]=$(k8s_free_port) || fail "no free port"
  GW[$r]=$(k8s_free_port) || fail "no free port"
  mkdir -p "$K8S_TMP/state-$r" "$K8S_TMP/ws-$r"
  PID[$r]=
done
log_of() { echo "$K8S_TMP/sandman-$1.log"; }
show_logs() {
  local r
  for r in a b; do
    [ -s "$(log_of $r)" ] && { echo "--- sandman $r log (last 30 lines) ---"; tail -n 30 "$(log_of $r)"; }
  done
}
stop_replica() { # R [SIGNAL]
  local r=$1 sig=${2:-TERM} i
  [ -n "${PID[$r]}" ] || return 0
  kill "-$sig" "${PID[$r]}" 2>/dev/null
  for i in $(seq 100); do kill -0 "${PID[$r]}" 2>/dev/null || break; sleep 0.1; done
  kill -9 "${PID[$r]}" 2>/dev/null
  wait "${PID[$r]}" 2>/dev/null
  PID[$r]=
}
stop_all() { stop_replica a; stop_replica b; }
K8S_CLEANUP+=(stop_all)
start_replica() {
  local r=$1 i
  "$SANDMAN" serve --backend kubernetes --kube-api "$K8S_SERVER" --kube-ca-file "$K8S_CA" \
    --kube-token-file "$TOKEN_FILE" --instance "$INSTANCE" --kube-lease-namespace sandman \
    --auth none --bind 127.0.0.1 --port "${API[$r]}" \
    --db "$K8S_TMP/state-$r/sandman.db" --workspace-root "$K8S_TMP/ws-$r" --image "$IMAGE" --ssh-host 127.0.0.1 \
    --gateway-bind 127.0.0.1 --gateway-port "${GW[$r]}" --memory 512m --cpus 0.5 >>"$(log_of "$r")" 2>&1 </dev/null &
  PID[$r]=$!
  for i in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${API[$r]}/healthz" 2>/dev/null && return 0
    kill -0 "${PID[$r]}" 2>/dev/null || { show_logs; fail "sandman $r exited during start-up"; }
    sleep 0.1
  done
  show_logs
  fail "sandman $r did not answer /healthz"
}

CODE= BODY= RETRY_AFTER=
# api R METHOD PATH [JSON]: sets CODE, BODY and RETRY_AFTER.
api() {
  local r=$1
  shift
  local args=(-sS -D "$K8S_TMP/hdr" -o "$K8S_TMP/resp" -w '%{http_code}' --max-time 120 -X "$1"
    "http://127.0.0.1:${API[$r]}$2")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  CODE=$(curl "${args[@]}" 2>"$K8S_TMP/curl.err") || CODE=000
  BODY=$(cat "$K8S_TMP/resp" 2>/dev/null)
  RETRY_AFTER=$(tr -d '\r' <"$K8S_TMP/hdr" 2>/dev/null | awk -F': ' 'tolower($1) == "retry-after" {print $2}')
}
leader_metric() { curl -fsS --max-time 2 "http://127.0.0.1:${API[$1]}/metrics" 2>/dev/null | awk '$1 == "sandman_leader" {print $2}'; }
is_leader() { [ "$(leader_metric "$1")" = 1 ]; }
sessions_json() { # R: the active sessions, as an array
  api "$1" GET '/api/v1/sessions?status=active&limit=100'
  jq -c 'if type == "array" then . else .sessions end' <<<"$BODY"
}
# create R USER JSON-MEMBERS: expects 201; sets SID and KEY (the private key file).
create() {
  api "$1" POST /api/v1/sessions "{\"user_id\":\"$2\"${3:+,$3}}"
  [ "$CODE" = 201 ] || { show_logs; fail "create $2 on $1: HTTP $CODE: $BODY"; }
  SID=$(jq -r .session_id <<<"$BODY")
  KEY=$K8S_TMP/$2.key
  jq -r .ssh_private_key <<<"$BODY" >"$KEY"
  chmod 600 "$KEY"
}
SSH_OPTS=(-o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
  -o ConnectTimeout=10)
sshg() { local r=$1 u=$2 k=$3; shift 3; timeout 60 ssh "${SSH_OPTS[@]}" -i "$k" -p "${GW[$r]}" "$u@127.0.0.1" "$@" </dev/null; }
# The session pods of this instance, as "user session" lines, sorted.
cluster_sessions() {
  k8s_kubectl get pods -n "$NS" -l "sandman.io/instance=$INSTANCE" -o json |
    jq -r '.items[] | select(.metadata.deletionTimestamp == null) |
      "\(.metadata.labels["sandman.io/user"]) \(.metadata.labels["sandman.io/session"])"' | sort
}
store_sessions() { sessions_json "$1" | jq -r '.[] | "\(.user_id) \(.session_id)"' | sort; }
secs_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }

note "replica a starts alone and leads; b starts and follows"
start_replica a
k8s_wait "a to lead" 20 is_leader a
start_replica b
sleep 3
assert_eq "$(leader_metric b)" 0 "b's sandman_leader"
assert_eq "$(leader_metric a)" 1 "a's sandman_leader"
api b GET /readyz
assert_eq "$CODE" 200 "b's /readyz"
assert_eq "$(jq -r .role <<<"$BODY")" follower "b's role"
api b GET /healthz
assert_eq "$CODE" 200 "b's /healthz"
HOLDER=$(k8s_kubectl get lease sandman-leader -n sandman -o jsonpath='{.spec.holderIdentity}')
assert_match "$HOLDER" "^[^_]+_[0-9a-f]{16}$" "the Lease's holderIdentity"
assert_eq "$(k8s_kubectl get lease sandman-leader -n sandman -o jsonpath='{.metadata.annotations.sandman\.io/api}')" \
  "http://127.0.0.1:${API[a]}" "the leader's API address on the Lease"

note "a write on the follower: 503 not_leader naming the leader"
api b POST /api/v1/sessions '{"user_id":"zed","mig_profile":"1g.10gb"}'
assert_eq "$CODE" 503 "create on b"
assert_eq "$(jq -r .code <<<"$BODY")" not_leader "error code"
assert_contains "$(jq -r .error <<<"$BODY")" "the leader is $HOLDER at http://127.0.0.1:${API[a]}" "error"
assert_eq "$RETRY_AFTER" 2 "Retry-After"

note "sessions made through the leader a"
create a alice '"mig_profile":"1g.10gb"'
ALICE=$SID ALICE_KEY=$KEY
create a bob '"mig_profile":"2g.20gb"'
BOB=$SID BOB_KEY=$KEY
sshg a alice "$ALICE_KEY" 'echo before-failover > /workspace/note' || { show_logs; fail "ssh alice via a"; }
ok "alice wrote /workspace/note through a's gateway"
api a PATCH "/api/v1/sessions/$ALICE" '{"ttl_minutes":500}'
assert_eq "$CODE" 200 "alice's TTL changed on a"
ALICE_EXPIRES=$(jq -r .expires_at <<<"$BODY")
assert_eq "$(k8s_kubectl get pod "sess-$ALICE" -n "$NS" -o jsonpath='{.metadata.annotations.sandman\.io/expires-at}')" \
  "$ALICE_EXPIRES" "alice's pod records the new expiry"
mirrored() { [ "$(store_sessions b)" = "$(store_sessions a)" ]; }
k8s_wait "b's mirror to list what a lists" 10 mirrored
ok "b lists alice and bob (reads on the follower)"
api b GET "/api/v1/sessions/$ALICE"
assert_eq "$(jq -r .expires_at <<<"$BODY")" "$ALICE_EXPIRES" "alice's expiry as b reads it"
assert_eq "$(sshg b bob "$BOB_KEY" 'id -un')" bob "ssh bob through the follower's gateway"

note "the leader a is killed with -9"
BEFORE=$(store_sessions a)
kill -9 "${PID[a]}"
wait "${PID[a]}" 2>/dev/null
PID[a]=
T_KILL=$(date +%s.%N)
# A create sent during the handover: refused with the retryable error until b leads, then made once.
attempts=0 refused=0 CAROL=
while [ -z "$CAROL" ]; do
  attempts=$((attempts + 1))
  api b POST /api/v1/sessions '{"user_id":"carol","mig_profile":"3g.40gb"}'
  case "$CODE" in
    201) CAROL=$(jq -r .session_id <<<"$BODY") ;;
    503)
      [ "$(jq -r .code <<<"$BODY")" = not_leader ] || { show_logs; fail "handover create: 503 but $BODY"; }
      [ -n "$RETRY_AFTER" ] || fail "handover create: 503 without Retry-After"
      refused=$((refused + 1))
      [ "$refused" = 1 ] && echo "   handover refusal: $(jq -r .error <<<"$BODY")"
      sleep 1
      ;;
    *) show_logs; fail "handover create: HTTP $CODE: $BODY" ;;
  esac
  [ "$attempts" -lt 60 ] || { show_logs; fail "carol's create never succeeded"; }
done
k8s_wait "b to lead" 25 is_leader b
TAKEOVER=$(secs_since "$T_KILL")
ok "carol's create: $refused refusal(s) with not_leader + Retry-After, then 201 ($CAROL)"
TAKEOVER_MS=$(awk -v t="$TAKEOVER" 'BEGIN{print int(t*1000)}')
note "takeover: b leads $(printf '%.1f' "$TAKEOVER") s after the kill (bound: 20 s)"
[ "$TAKEOVER_MS" -le 20000 ] || fail "takeover took ${TAKEOVER} s"
assert_eq "$(k8s_kubectl get lease sandman-leader -n sandman -o jsonpath='{.spec.leaseTransitions}')" 1 "leaseTransitions"
assert_contains "$(curl -fsS "http://127.0.0.1:${API[b]}/metrics")" "sandman_leader_transitions_total 1" "b's metrics"

note "no session lost or doubled"
AFTER=$(store_sessions b)
echo "$AFTER" | sed 's/^/   | /'
assert_eq "$(grep -v '^carol ' <<<"$AFTER")" "$BEFORE" "b's sessions besides carol's (same ids as before the kill)"
assert_eq "$(grep -c '^carol ' <<<"$AFTER")" 1 "carol's sessions"
assert_eq "$(cluster_sessions)" "$AFTER" "pods in the cluster"
api b GET "/api/v1/sessions/$ALICE"
assert_eq "$(jq -r .status <<<"$BODY")" running "alice's status on b"
assert_eq "$(jq -r .expires_at <<<"$BODY")" "$ALICE_EXPIRES" "alice's expiry (the TTL change on a kept)"
assert_eq "$(sshg b alice "$ALICE_KEY" 'cat /workspace/note')" before-failover "ssh alice through the new leader's gateway"
create b dave '"mig_profile":"1g.10gb"'
DAVE=$SID
ok "a new session on the new leader"

note "a comes back: it follows, and mirrors what b did"
start_replica a
sleep 3
assert_eq "$(leader_metric a)" 0 "a's sandman_leader"
k8s_wait "a's mirror to list what b lists" 15 mirrored
ok "a lists alice, bob, carol and dave"

note "the leader b is stopped cleanly (SIGTERM): it releases the Lease and a takes over at once"
T_TERM=$(date +%s.%N)
stop_replica b TERM
k8s_wait "a to lead" 20 is_leader a
HANDOVER=$(secs_since "$T_TERM")
note "handover after SIGTERM: $HANDOVER s"
grep -q 'lease released' "$(log_of b)" || { show_logs; fail "b did not release the lease"; }
ok "b's log: lease released"
[ "$(awk -v t="$HANDOVER" 'BEGIN{print (t < 8)}')" = 1 ] || fail "handover after SIGTERM took $HANDOVER s (expected well under the 15 s lease)"
assert_eq "$(store_sessions a)" "$(cluster_sessions)" "a's sessions match the pods"
assert_eq "$(store_sessions a | wc -l)" 4 "sessions"

note "cleanup through the leader a"
for s in "$ALICE" "$BOB" "$CAROL" "$DAVE"; do
  api a DELETE "/api/v1/sessions/$s"
  assert_eq "$CODE" 200 "delete $s"
done
gone_all() { [ -z "$(cluster_sessions)" ]; }
k8s_wait "every session pod gone" 30 gone_all
ok "no session pod left"
echo "FIGURES: takeover after kill -9 ${TAKEOVER} s; handover after SIGTERM ${HANDOVER} s"
stop_all

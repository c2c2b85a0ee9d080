#!/usr/bin/env bash
# k8s: the test control plane itself (tests/k8s/lib.sh). etcd, kube-apiserver, kube-scheduler and
# kube-controller-manager from scripts/k8s-control-plane.sh start on loopback ports below the
# ephemeral range; RBAC and Pod Security are on; a bound service-account token authenticates;
# k8s_provoke_gone makes a watch resuming from an earlier resourceVersion end in 410 Gone (and the
# same watch was fine before); the API server restarts on its port; k8s_down leaves no process.
# Usage: control_plane_test.sh [path-to-sandman]   (the binary is not used here)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
k8s_test_init

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
PIDS=("$K8S_ETCD_PID" "$K8S_APISERVER_PID" "$K8S_SCHEDULER_PID" "$K8S_CM_PID")

note "every listening socket of the four programs is on 127.0.0.1 below 32768"
LISTEN=$(ss -Htlnp 2>/dev/null)
n=0
for pid in "${PIDS[@]}"; do
  while read -r addr; do
    [ -n "$addr" ] || continue
    n=$((n + 1))
    [[ "$addr" == 127.0.0.1:* ]] || fail "pid $pid listens on $addr"
    [ "${addr##*:}" -lt 32768 ] || fail "pid $pid listens on $addr, in the ephemeral range"
  done < <(grep "pid=$pid," <<<"$LISTEN" | awk '{print $4}')
done
[ "$n" -ge 5 ] || fail "expected at least 5 listening sockets (etcd x2, apiserver, scheduler, controller-manager), saw $n"
ok "$n sockets, all 127.0.0.1 and below 32768"
assert_eq "$(k8s_curl /readyz)" ok "kube-apiserver /readyz"
assert_eq "$(k8s_kubectl version -o json | jq -r .serverVersion.gitVersion)" v1.35.4 "server version"

note "RBAC and Pod Security admission are on"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" "$K8S_SERVER/api/v1/namespaces/default/pods")
assert_eq "$CODE" 403 "anonymous list pods"
k8s_kubectl create namespace locked >/dev/null
k8s_kubectl label namespace locked pod-security.kubernetes.io/enforce=restricted >/dev/null
k8s_wait_default_sa locked || fail "default SA"
OUT=$(k8s_kubectl run priv -n locked --image=sandman-workspace:latest --privileged 2>&1) && fail "privileged pod admitted: $OUT"
assert_contains "$OUT" 'violates PodSecurity "restricted:latest"' "privileged pod refused"

note "k8s_token: a bound token for a ServiceAccount authenticates as it, with no rights of its own"
k8s_kubectl create serviceaccount probe -n default >/dev/null
TOKEN=$(k8s_token probe default 10m) || fail "k8s_token"
WHO=$(curl -sS --cacert "$K8S_CA" -H "Authorization: Bearer $TOKEN" -X POST -H 'Content-Type: application/json' \
  -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
  "$K8S_SERVER/apis/authentication.k8s.io/v1/selfsubjectreviews" | jq -r .status.userInfo.username)
assert_eq "$WHO" system:serviceaccount:default:probe "token's user"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" -H "Authorization: Bearer $TOKEN" \
  "$K8S_SERVER/api/v1/namespaces/default/secrets")
assert_eq "$CODE" 403 "the token lists secrets"

note "410 Gone for real: a watch from an earlier resourceVersion works, then ends in 410 after k8s_provoke_gone"
RV=$(k8s_curl /api/v1/namespaces/default/configmaps | jq -r .metadata.resourceVersion)
k8s_kubectl create configmap after-rv -n default >/dev/null
OUT=$(k8s_curl "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$RV&timeoutSeconds=1")
assert_contains "$(jq -r .type <<<"$OUT" | sort -u | tr '\n' ' ')" ADDED "before: a watch from $RV"
T0=$(date +%s.%N)
k8s_provoke_gone || fail "k8s_provoke_gone"
note "k8s_provoke_gone took $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
OUT=$(k8s_curl "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=$RV&timeoutSeconds=1")
assert_eq "$(head -n1 <<<"$OUT" | jq -r '.type + " " + (.object.code|tostring) + " " + .object.reason')" \
  "ERROR 410 Expired" "after: the watch from $RV"
# Served from etcd instead of the watch cache, the same RV is gone too (compacted).
CODE=$(k8s_curl "/api/v1/namespaces/default/configmaps?resourceVersion=$RV&resourceVersionMatch=Exact" \
  -o /dev/null -w '%{http_code}')
assert_eq "$CODE" 410 "list at exactly $RV (etcd)"

note "k8s_restart_apiserver: same port, objects kept"
PORT_BEFORE=$K8S_APISERVER_PORT
T0=$(date +%s.%N)
k8s_restart_apiserver || fail "restart"
note "restart took $(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')s"
assert_eq "$K8S_APISERVER_PORT" "$PORT_BEFORE" "port"
assert_eq "$(k8s_kubectl get configmap after-rv -n default -o name)" configmap/after-rv "object after restart"
PIDS+=("$K8S_APISERVER_PID")

note "k8s_down stops every process it started"
k8s_down
for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && fail "pid $pid still running"; done
ok "no process left"

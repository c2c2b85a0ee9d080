#!/usr/bin/env bash
# k8s: KubeClient and PodCache (tests/integration/kube_client_test.cc, built as
# kube_integration_tests) against a real etcd and kube-apiserver from lib.sh, with RBAC on:
# the admin's client certificate, and a bound token of a cluster-admin ServiceAccount for the
# token-rotation test. Only etcd and kube-apiserver run (K8S_APISERVER_ONLY): no scheduler or
# controller touches the tests' pods while they count events.
#
# The restart and 410 tests restart kube-apiserver from inside the test process: they run
# $SANDMAN_TEST_KUBE_RESTART, a script in the run's temp dir that asks this shell (which owns
# the control plane's processes) through a request file and waits for its answer.
#
# Usage: kube_client_test.sh <path-to-sandman> [gtest args...]
#   kube_integration_tests is taken from beside sandman; SANDMAN_KUBE_TESTS names another
#   binary (CTest's tsan.kube: the TSan tree's). `--shell` instead of gtest args opens a shell
#   with SANDMAN_TEST_KUBE_* set (no restart there) and stops everything when it exits.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SANDMAN=${1:?usage: kube_client_test.sh <path-to-sandman> [gtest args...]}
shift
TESTS=${SANDMAN_KUBE_TESTS:-$(dirname "$SANDMAN")/kube_integration_tests}
[ -x "$TESTS" ] || { echo "FAIL: no $TESTS (cmake --build <build dir> --target kube_integration_tests)"; exit 1; }
k8s_test_init

K8S_APISERVER_ONLY=1 k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "etcd and kube-apiserver up in ${K8S_UP_SECONDS}s"
k8s_client_env

# A bearer token the tests can rotate: a ServiceAccount bound to cluster-admin.
k8s_kubectl create serviceaccount kube-client-test -n default >/dev/null || fail "create ServiceAccount"
k8s_kubectl create clusterrolebinding kube-client-test --clusterrole=cluster-admin \
  --serviceaccount=default:kube-client-test >/dev/null || fail "create ClusterRoleBinding"
export SANDMAN_TEST_KUBE_TOKEN_FILE=$K8S_TMP/admin.token
(umask 077 && k8s_token kube-client-test default 2h >"$SANDMAN_TEST_KUBE_TOKEN_FILE") || fail "no token"

if [ "${1:-}" = --shell ]; then
  export KUBECONFIG=$K8S_KUBECONFIG
  note "control plane up ($K8S_SERVER); exit the shell to stop it"
  bash -i || true
  exit 0
fi

REQUEST=$K8S_TMP/restart.request
ANSWER=$K8S_TMP/restart.answer
export SANDMAN_TEST_KUBE_RESTART=$K8S_TMP/restart-apiserver
cat >"$SANDMAN_TEST_KUBE_RESTART" <<EOF
#!/usr/bin/env bash
# Asks tests/k8s/kube_client_test.sh to restart kube-apiserver; exits with its status once the
# new one answers /readyz.
rm -f "$ANSWER"
: >"$REQUEST"
for _ in \$(seq 1800); do
  [ -e "$ANSWER" ] && exit "\$(cat "$ANSWER")"
  sleep 0.1
done
echo "restart-apiserver: no answer from kube_client_test.sh after 180 s" >&2
exit 1
EOF
chmod +x "$SANDMAN_TEST_KUBE_RESTART"

note "running $TESTS"
"$TESTS" "$@" &
TEST_PID=$!
K8S_BG_PIDS+=("$TEST_PID")
while kill -0 "$TEST_PID" 2>/dev/null; do
  if [ -e "$REQUEST" ]; then
    rm -f "$REQUEST"
    note "restarting kube-apiserver (asked by the test)"
    rc=0
    k8s_restart_apiserver || rc=$?
    echo "$rc" >"$ANSWER.tmp" && mv "$ANSWER.tmp" "$ANSWER"
  fi
  sleep 0.1
done
rc=0
wait "$TEST_PID" || rc=$?
K8S_BG_PIDS=()
[ "$rc" = 0 ] || fail "kube_integration_tests exited with $rc"

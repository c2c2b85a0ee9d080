# shellcheck shell=bash disable=SC2034  # globals are read by the suites that source this file
# A real Kubernetes control plane for the Kubernetes-backend tests: etcd,
# kube-apiserver, kube-scheduler and kube-controller-manager, sourced by tests/k8s/*_test.sh.
#
# The programs are the upstream ones built by scripts/k8s-control-plane.sh (cached
# outside the clone). Everything listens on 127.0.0.1 at ports picked at run time
# below the ephemeral range; certificates are made with openssl per run.
#
#   source tests/k8s/lib.sh
#   k8s_up "$TMP/k8s"          # sets K8S_SERVER, K8S_CA, K8S_KUBECONFIG, K8S_BIN, ...
#   trap k8s_down EXIT         # (or call k8s_down from the suite's own cleanup)
#   k8s_kubectl get nodes
#
# Functions: k8s_up DIR, k8s_down, k8s_restart_apiserver, k8s_provoke_gone, k8s_client_env,
# k8s_token SA NS [DURATION], k8s_kubectl ARGS, k8s_curl PATH [CURL ARGS],
# k8s_wait_default_sa NS, k8s_etcd_revision, k8s_compact_etcd [REV].

K8S_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
K8S_REPO=$(cd "$K8S_LIB_DIR/../.." && pwd)
K8S_PY=/usr/bin/python3

K8S_DIR=
K8S_DIR_OWNED=0
K8S_BIN=
K8S_SERVER=
K8S_CA=
K8S_KUBECONFIG=
K8S_ADMIN_CERT=
K8S_ADMIN_KEY=
K8S_ETCD_URL=
K8S_ETCD_PORT=
K8S_ETCD_PEER_PORT=
K8S_APISERVER_PORT=
K8S_SCHEDULER_PORT=
K8S_CM_PORT=
K8S_ETCD_PID=
K8S_APISERVER_PID=
K8S_SCHEDULER_PID=
K8S_CM_PID=
K8S_APISERVER_ARGS=()
K8S_UP_SECONDS=
# The service network the API server allocates ClusterIPs from (nothing routes it here).
K8S_SERVICE_CIDR=10.96.0.0/16

k8s_log() { echo "k8s: $*" >&2; }
k8s_die() { echo "k8s: FAIL: $*" >&2; return 1; }

# ----------------------------------------------------------------- ports

k8s_port_in_use() {
  local p=$1
  if command -v ss >/dev/null 2>&1; then
    [ -n "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ] && return 0
  fi
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
  return 1
}

# A free loopback port in 20000-29999: below the kernel's ephemeral range (32768+),
# where an outgoing connection of any process could take it between pick and bind.
K8S_TAKEN_PORTS=" "
k8s_free_port() {
  local i p
  for i in $(seq 300); do
    p=$((20000 + RANDOM % 10000))
    [[ "$K8S_TAKEN_PORTS" == *" $p "* ]] && continue
    k8s_port_in_use "$p" && continue
    K8S_TAKEN_PORTS+="$p "
    echo "$p"
    return 0
  done
  return 1
}

# ----------------------------------------------------------------- certificates

# k8s_cert NAME SUBJECT EXTENSIONS: an EC key and a certificate signed by the run's CA.
k8s_cert() {
  local name=$1 subj=$2 ext=$3 d=$K8S_DIR/pki
  printf '%s\n' "$ext" >"$d/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$d/$name.key" -subj "$subj" -out "$d/$name.csr" 2>/dev/null || return 1
  openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 2 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null || return 1
  rm -f "$d/$name.csr" "$d/$name.ext"
}

k8s_make_pki() {
  local d=$K8S_DIR/pki
  mkdir -p "$d" && chmod 700 "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -sha256 \
    -keyout "$d/ca.key" -out "$d/ca.crt" -subj "/CN=sandman-test-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null || return 1
  local client="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  # The in-cluster names too, so a client configured as in a pod (kubernetes.default.svc) verifies.
  k8s_cert apiserver "/CN=kube-apiserver" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" || return 1
  k8s_cert admin "/O=system:masters/CN=sandman-test-admin" "$client" || return 1
  k8s_cert scheduler "/CN=system:kube-scheduler" "$client" || return 1
  k8s_cert controller-manager "/CN=system:kube-controller-manager" "$client" || return 1
  # Service-account tokens are signed with this pair (ES256).
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$d/sa.key" || return 1
  openssl ec -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null || return 1
}

# k8s_kubeconfig FILE CERT_NAME: a kubeconfig for the client certificate pki/CERT_NAME.*
k8s_kubeconfig() {
  local f=$1 who=$2 d=$K8S_DIR/pki
  cat >"$f" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sandman-test
  cluster:
    server: $K8S_SERVER
    certificate-authority: $d/ca.crt
users:
- name: $who
  user:
    client-certificate: $d/$who.crt
    client-key: $d/$who.key
contexts:
- name: $who@sandman-test
  context:
    cluster: sandman-test
    user: $who
current-context: $who@sandman-test
EOF
}

# ----------------------------------------------------------------- processes

# k8s_wait_http URL PID NAME SECONDS [CURL ARGS]: until URL answers 200 "ok"; fails early if PID died.
k8s_wait_http() {
  local url=$1 pid=$2 name=$3 secs=$4 i out
  shift 4
  for ((i = 0; i < secs * 10; i++)); do
    out=$(curl -s --max-time 2 "$@" "$url" 2>/dev/null) && [ "$out" = ok ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      k8s_log "$name exited; last lines of its log:"
      tail -n 30 "$K8S_DIR/logs/$name.log" >&2
      return 1
    fi
    sleep 0.1
  done
  k8s_log "$name not ready after ${secs}s at $url (last answer: ${out:-none}); last lines of its log:"
  tail -n 30 "$K8S_DIR/logs/$name.log" >&2
  return 1
}

k8s_stop_pid() { # PID [SECONDS]
  local pid=$1 secs=${2:-10} i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < secs * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

k8s_start_etcd() {
  "$K8S_BIN/etcd" --name sandman-test --data-dir "$K8S_DIR/etcd" \
    --listen-client-urls "$K8S_ETCD_URL" --advertise-client-urls "$K8S_ETCD_URL" \
    --listen-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --initial-cluster "sandman-test=http://127.0.0.1:$K8S_ETCD_PEER_PORT" \
    --unsafe-no-fsync --log-level warn >>"$K8S_DIR/logs/etcd.log" 2>&1 &
  K8S_ETCD_PID=$!
  k8s_wait_http "$K8S_ETCD_URL/health" "$K8S_ETCD_PID" etcd 30 -o /dev/null -w ok ||
    return 1
  # /health answers {"health":"true"}; the -w ok above only proves it answered. Check the body.
  curl -s "$K8S_ETCD_URL/health" | grep -q '"health":"true"' || k8s_die "etcd unhealthy"
}

# kube-apiserver closes its listener at once on SIGTERM, then lingers (about 30 s here) with its
# connections already gone; once the port is closed it is killed, which clients cannot tell apart.
k8s_stop_apiserver() {
  local pid=$K8S_APISERVER_PID i
  K8S_APISERVER_PID=
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    [ -n "$(ss -Htln "( sport = :$K8S_APISERVER_PORT )" 2>/dev/null)" ] || { sleep 1; break; }
    sleep 0.1
  done
  k8s_stop_pid "$pid" 0
}

k8s_start_apiserver() {
  "$K8S_BIN/kube-apiserver" "${K8S_APISERVER_ARGS[@]}" >>"$K8S_DIR/logs/kube-apiserver.log" 2>&1 &
  K8S_APISERVER_PID=$!
  k8s_wait_http "$K8S_SERVER/readyz" "$K8S_APISERVER_PID" kube-apiserver 90 \
    --cacert "$K8S_CA" --cert "$K8S_ADMIN_CERT" --key "$K8S_ADMIN_KEY"
}

# ----------------------------------------------------------------- public

# k8s_up DIR: certificates, kubeconfigs and the four control-plane programs in DIR (made if missing).
# With K8S_APISERVER_ONLY=1, etcd and kube-apiserver only: nothing schedules pods or changes them
# behind a client's back, and no controller makes a namespace's "default" ServiceAccount.
k8s_up() {
  local dir=$1 t0
  t0=$(date +%s.%N)
  [ -n "$dir" ] || { k8s_die "usage: k8s_up DIR"; return 1; }
  local t
  for t in openssl curl; do
    command -v "$t" >/dev/null 2>&1 || { k8s_die "required tool '$t' is not installed"; return 1; }
  done
  K8S_BIN=$("$K8S_REPO/scripts/k8s-control-plane.sh") || { k8s_die "scripts/k8s-control-plane.sh failed"; return 1; }
  [ -d "$dir" ] || K8S_DIR_OWNED=1
  mkdir -p "$dir/logs" || return 1
  K8S_DIR=$(cd "$dir" && pwd)

  K8S_ETCD_PORT=$(k8s_free_port) && K8S_ETCD_PEER_PORT=$(k8s_free_port) &&
    K8S_APISERVER_PORT=$(k8s_free_port) && K8S_SCHEDULER_PORT=$(k8s_free_port) &&
    K8S_CM_PORT=$(k8s_free_port) || { k8s_die "no free ports in 20000-29999"; return 1; }
  K8S_ETCD_URL=http://127.0.0.1:$K8S_ETCD_PORT
  K8S_SERVER=https://127.0.0.1:$K8S_APISERVER_PORT

  k8s_make_pki || { k8s_die "openssl failed to make the certificates"; return 1; }
  local p=$K8S_DIR/pki
  K8S_CA=$p/ca.crt
  K8S_ADMIN_CERT=$p/admin.crt
  K8S_ADMIN_KEY=$p/admin.key
  K8S_KUBECONFIG=$K8S_DIR/admin.kubeconfig
  k8s_kubeconfig "$K8S_KUBECONFIG" admin
  k8s_kubeconfig "$K8S_DIR/scheduler.kubeconfig" scheduler
  k8s_kubeconfig "$K8S_DIR/controller-manager.kubeconfig" controller-manager

  k8s_start_etcd || return 1

  K8S_APISERVER_ARGS=(
    --etcd-servers="$K8S_ETCD_URL"
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$K8S_APISERVER_PORT"
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key"
    --client-ca-file="$p/ca.crt"
    --service-account-issuer=https://kubernetes.default.svc.cluster.local
    --service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key"
    --service-cluster-ip-range="$K8S_SERVICE_CIDR"
    --authorization-mode=Node,RBAC
    # The default plugins (NamespaceLifecycle, ServiceAccount, PodSecurity, DefaultStorageClass,
    # StorageObjectInUseProtection, ...) plus: ownerReferences need delete rights on the owned
    # object (a Secret owned by its pod), as on OpenShift.
    --enable-admission-plugins=NodeRestriction,PodSecurity,OwnerReferencesPermissionEnforcement
    # So a refused privileged pod is refused by Pod Security admission, not by this flag.
    --allow-privileged=true
    # 127.0.0.1 cannot be an Endpoints address, and no pod dials the kubernetes Service here.
    --endpoint-reconciler-type=none
    --profiling=false
  )
  k8s_start_apiserver || return 1
  if [ "${K8S_APISERVER_ONLY:-0}" = 1 ]; then
    k8s_up_done "$t0"
    return 0
  fi

  "$K8S_BIN/kube-scheduler" --kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
    --authentication-kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
    --authorization-kubeconfig="$K8S_DIR/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$K8S_SCHEDULER_PORT" --cert-dir="$K8S_DIR/scheduler-certs" \
    --leader-elect=false --profiling=false >>"$K8S_DIR/logs/kube-scheduler.log" 2>&1 &
  K8S_SCHEDULER_PID=$!

  # Fake nodes send no heartbeats: without the node lifecycle controller nothing
  # taints them unreachable or evicts their pods. Garbage collection (Secrets owned
  # by a deleted pod), service accounts, PV binding and namespace deletion stay on.
  "$K8S_BIN/kube-controller-manager" --kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
    --authentication-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
    --authorization-kubeconfig="$K8S_DIR/controller-manager.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$K8S_CM_PORT" --cert-dir="$K8S_DIR/controller-manager-certs" \
    --leader-elect=false --profiling=false --use-service-account-credentials=true \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
    --controllers='*,-node-lifecycle-controller' \
    >>"$K8S_DIR/logs/kube-controller-manager.log" 2>&1 &
  K8S_CM_PID=$!

  k8s_wait_http "https://127.0.0.1:$K8S_SCHEDULER_PORT/healthz" "$K8S_SCHEDULER_PID" kube-scheduler 60 -k ||
    return 1
  k8s_wait_http "https://127.0.0.1:$K8S_CM_PORT/healthz" "$K8S_CM_PID" kube-controller-manager 60 -k ||
    return 1
  # Pods need their namespace's default ServiceAccount (made by the controller-manager).
  k8s_wait_default_sa default || return 1
  k8s_up_done "$t0"
}

k8s_up_done() {
  K8S_UP_SECONDS=$(awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  k8s_log "control plane up in ${K8S_UP_SECONDS}s: $K8S_SERVER (etcd $K8S_ETCD_URL), kubeconfig $K8S_KUBECONFIG"
  export K8S_DIR K8S_BIN K8S_SERVER K8S_CA K8S_KUBECONFIG K8S_ADMIN_CERT K8S_ADMIN_KEY K8S_ETCD_URL
}

# k8s_client_env: exports the SANDMAN_TEST_KUBE_* variables kube_integration_tests and
# kube_watch_bench read: the server, its CA, the admin's client certificate, and etcd's URL.
k8s_client_env() {
  export SANDMAN_TEST_KUBE_SERVER=$K8S_SERVER SANDMAN_TEST_KUBE_CA=$K8S_CA
  export SANDMAN_TEST_KUBE_CERT=$K8S_ADMIN_CERT SANDMAN_TEST_KUBE_KEY=$K8S_ADMIN_KEY
  export SANDMAN_TEST_ETCD=$K8S_ETCD_URL
}

# k8s_down: stops what k8s_up started, by pid, newest first; removes DIR if k8s_up made it.
# Safe to call twice and from an EXIT trap.
k8s_down() {
  local rc=$?
  k8s_stop_pid "$K8S_CM_PID" 10
  k8s_stop_pid "$K8S_SCHEDULER_PID" 10
  k8s_stop_apiserver
  k8s_stop_pid "$K8S_ETCD_PID" 10
  K8S_CM_PID= K8S_SCHEDULER_PID= K8S_APISERVER_PID= K8S_ETCD_PID=
  if [ "$K8S_DIR_OWNED" = 1 ] && [ -n "$K8S_DIR" ] && [ -d "$K8S_DIR" ]; then
    if [ "${K8S_KEEP:-0}" = 1 ]; then k8s_log "kept $K8S_DIR"; else rm -rf "$K8S_DIR"; fi
  fi
  K8S_DIR_OWNED=0
  return $rc
}

# k8s_restart_apiserver: stops kube-apiserver and starts it again on the same port, certificates
# and etcd; returns once /readyz answers.
k8s_restart_apiserver() {
  k8s_stop_apiserver
  k8s_start_apiserver
}

k8s_kubectl() { "$K8S_BIN/kubectl" --kubeconfig "$K8S_KUBECONFIG" "$@"; }

# k8s_curl PATH [CURL ARGS]: the API as the admin (system:masters).
k8s_curl() {
  local path=$1
  shift
  curl -sS --cacert "$K8S_CA" --cert "$K8S_ADMIN_CERT" --key "$K8S_ADMIN_KEY" "$@" "$K8S_SERVER$path"
}

# k8s_token SA NS [DURATION]: a bound service-account token (TokenRequest API) on stdout.
k8s_token() {
  k8s_kubectl create token "$1" -n "$2" --duration="${3:-1h}"
}

# k8s_wait_default_sa NS: until the controller-manager has made NS's "default" ServiceAccount.
k8s_wait_default_sa() {
  local i
  for i in $(seq 300); do
    k8s_kubectl get serviceaccount default -n "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  k8s_die "no default ServiceAccount in namespace $1 after 30s"
}

# k8s_etcd_revision: etcd's current revision (what the API server reports as resourceVersion).
k8s_etcd_revision() {
  curl -sS -X POST "$K8S_ETCD_URL/v3/kv/range" -d '{"key":"AA==","count_only":true}' |
    "$K8S_PY" -c 'import json,sys; print(int(json.load(sys.stdin)["header"]["revision"]))'
}

# k8s_compact_etcd [REV]: compacts etcd's history up to REV (default: the current revision).
k8s_compact_etcd() {
  local rev=${1:-$(k8s_etcd_revision)}
  curl -sS -X POST "$K8S_ETCD_URL/v3/kv/compaction" -d "{\"revision\":\"$rev\",\"physical\":true}" >/dev/null
}

# k8s_provoke_gone: after this, a watch resuming from any resourceVersion taken before the call is
# answered 410 Gone (an ERROR event with code 410, or a 410 response). How: one more write so the
# revision moves past every earlier one, then, with kube-apiserver stopped so its watch cache holds
# nothing older, etcd compacts its history to the current revision; the API server restarts and both
# its watch cache (rebuilt from a fresh list) and etcd (compacted) have lost the old revisions.
k8s_provoke_gone() {
  local rev
  k8s_kubectl create configmap "gone-$RANDOM$RANDOM" -n default >/dev/null || return 1
  k8s_stop_apiserver
  rev=$(k8s_etcd_revision) || return 1
  k8s_compact_etcd "$rev" || return 1
  k8s_log "etcd compacted to revision $rev with kube-apiserver stopped"
  k8s_start_apiserver
}

# ----------------------------------------------------------------- suite helpers

K8S_TMP=
K8S_RUN=
K8S_KUBELET_PID=
K8S_KUBELET_LOG=
K8S_NETWORK=
K8S_CLEANUP=()      # functions a suite adds, run first by the cleanup
K8S_BG_PIDS=()      # other background processes a suite started
K8S_T0=$(date +%s.%N)

note() { echo "-- $*"; }
ok() { echo "   ok: $*"; }
fail() {
  echo "FAIL: $*"
  if [ -n "$K8S_KUBELET_LOG" ] && [ -s "$K8S_KUBELET_LOG" ]; then
    echo "--- fake kubelet log (last 30 lines) ---"
    tail -n 30 "$K8S_KUBELET_LOG"
    echo "---"
  fi
  exit 1
}
assert_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; ok "$3 = $2"; }
assert_contains() { [[ "$1" == *"$2"* ]] || fail "$3: '$2' not in: $1"; ok "$3 contains '$2'"; }
assert_match() { [[ "$1" =~ $2 ]] || fail "$3: '$1' does not match /$2/"; ok "$3 ~ /$2/"; }

# k8s_test_init: a temp dir, a run id and a cleanup trap for a tests/k8s suite.
k8s_test_init() {
  local t
  for t in jq curl openssl "$K8S_PY"; do
    command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed"
  done
  trap k8s_test_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  K8S_RUN=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  K8S_TMP=$(mktemp -d "${TMPDIR:-/tmp}/sandman-k8s.XXXXXX") || fail "mktemp failed"
  chmod 755 "$K8S_TMP"
  K8S_NETWORK=sandman-k8s-$K8S_RUN
  note "run $K8S_RUN: tmp $K8S_TMP"
}

k8s_test_cleanup() {
  local rc=$? f p
  set +e
  trap - EXIT INT TERM
  for f in "${K8S_CLEANUP[@]}"; do "$f"; done
  for p in "${K8S_BG_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  k8s_stop_kubelet
  k8s_down
  # What a killed kubelet could not remove: only this run's containers and network.
  if command -v docker >/dev/null 2>&1 && [ -n "$K8S_NETWORK" ]; then
    local ids
    ids=$(docker ps -aq --filter "label=sandman.test.kubelet=$K8S_NETWORK" 2>/dev/null)
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    docker network inspect "$K8S_NETWORK" >/dev/null 2>&1 && docker network rm "$K8S_NETWORK" >/dev/null 2>&1
  fi
  if [ -n "$K8S_TMP" ] && [ -d "$K8S_TMP" ]; then
    if [ "${K8S_KEEP:-0}" = 1 ]; then echo "kept $K8S_TMP"; else rm -rf "$K8S_TMP"; fi
  fi
  local dt
  dt=$(awk -v a="$K8S_T0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  if [ "$rc" = 0 ]; then echo "PASS: $(basename "$0") (${dt} s)"; else echo "($(basename "$0") failed after ${dt} s, rc=$rc)"; fi
  exit "$rc"
}

# k8s_fake_nodes --node SPEC...: tests/k8s/fake_nodes.py against this cluster.
k8s_fake_nodes() { "$K8S_PY" "$K8S_LIB_DIR/fake_nodes.py" "$@"; }

# k8s_start_kubelet NODES [ARGS]: the fake kubelet for NODES (comma-separated) on $K8S_NETWORK,
# state in $K8S_TMP/kubelet, default StorageClass "sandman-test"; returns once it serves.
k8s_start_kubelet() {
  local nodes=$1 i
  shift
  command -v docker >/dev/null 2>&1 || fail "docker is required for the fake kubelet"
  K8S_KUBELET_LOG=$K8S_TMP/kubelet.log
  rm -f "$K8S_TMP/kubelet.ready"
  "$K8S_PY" "$K8S_LIB_DIR/fake_kubelet.py" --nodes "$nodes" --state-dir "$K8S_TMP/kubelet" \
    --network "$K8S_NETWORK" --storage-class sandman-test --ready-file "$K8S_TMP/kubelet.ready" "$@" \
    >>"$K8S_KUBELET_LOG" 2>&1 &
  K8S_KUBELET_PID=$!
  for i in $(seq 300); do
    [ -e "$K8S_TMP/kubelet.ready" ] && return 0
    kill -0 "$K8S_KUBELET_PID" 2>/dev/null || fail "fake kubelet exited"
    sleep 0.1
  done
  fail "fake kubelet not ready after 30s"
}

# k8s_stop_kubelet: SIGTERM, so it removes its containers and network itself.
k8s_stop_kubelet() {
  [ -n "$K8S_KUBELET_PID" ] || return 0
  k8s_stop_pid "$K8S_KUBELET_PID" 30
  K8S_KUBELET_PID=
}

# k8s_wait WHAT SECONDS CMD...: until CMD succeeds.
k8s_wait() {
  local what=$1 secs=$2 i
  shift 2
  for ((i = 0; i < secs * 5; i++)); do
    "$@" && return 0
    sleep 0.2
  done
  fail "timed out after ${secs}s waiting for $what"
}

# k8s_pod_json NS NAME: the pod as JSON (empty if absent).
k8s_pod_json() { k8s_kubectl get pod "$2" -n "$1" -o json 2>/dev/null; }

# k8s_token_kubeconfig FILE TOKEN: a kubeconfig that authenticates with TOKEN only.
k8s_token_kubeconfig() {
  cat >"$1" <<EOK
apiVersion: v1
kind: Config
clusters:
- name: sandman-test
  cluster:
    server: $K8S_SERVER
    certificate-authority: $K8S_CA
users:
- name: token
  user:
    token: $2
contexts:
- name: token@sandman-test
  context:
    cluster: sandman-test
    user: token
current-context: token@sandman-test
EOK
  chmod 600 "$1"
}

# k8s_apply_manifests: deploy/kubernetes applied as an admin would (strict validation), with the
# daemon's Deployment scaled to 0: the tests run `sandman serve` on the host instead, with the
# sandman ServiceAccount's token (k8s_sandman_token_file), so only the shipped RBAC applies.
k8s_apply_manifests() {
  k8s_kubectl apply --validate=strict -k "$K8S_REPO/deploy/kubernetes" >/dev/null || return 1
  k8s_kubectl scale deployment/sandman -n sandman --replicas=0 >/dev/null || return 1
  k8s_wait_default_sa sandman-sessions
}

# k8s_sandman_token_file FILE [DURATION]: a bound token of ServiceAccount sandman/sandman in FILE
# (mode 0600), as the kubelet would project it; call again to "rotate" it.
k8s_sandman_token_file() {
  local tok
  tok=$(k8s_token sandman sandman "${2:-1h}") || return 1
  (umask 077 && printf '%s' "$tok" >"$1.tmp") && mv "$1.tmp" "$1"
}

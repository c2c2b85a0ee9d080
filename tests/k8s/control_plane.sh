# A throwaway control plane for the Kubernetes client tests and benchmark: etcd
# and kube-apiserver on loopback ports below 32768, certificates made with
# openssl, in one temp dir removed on exit. Sourced; kc_up exports:
#   SANDMAN_TEST_KUBE_SERVER       https://127.0.0.1:<port>
#   SANDMAN_TEST_KUBE_CA           the CA that signed the server (and the client certs)
#   SANDMAN_TEST_KUBE_CERT/_KEY    an admin client identity (group system:masters)
#   SANDMAN_TEST_KUBE_TOKEN_FILE   a static bearer token of an admin user
#   SANDMAN_TEST_ETCD              etcd's client URL (plain http; its JSON gateway serves /v3/kv/...)
#   SANDMAN_TEST_KUBE_RESTART      a command that stops kube-apiserver and starts it again, ready
#   KUBECONFIG                     the admin identity for kubectl
# (To be folded into the shared tests/k8s/lib.sh.)

KC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=/usr/bin/python3

# n distinct free loopback TCP ports below the ephemeral range.
kc_free_ports() {
  "$PY" - "$1" <<'EOF'
import random, socket, sys
n, ports = int(sys.argv[1]), []
while len(ports) < n:
    p = random.randint(20000, 32000)
    if p in ports: continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
print(" ".join(map(str, ports)))
EOF
}

kc_certs() {
  local d=$1
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj /CN=sandman-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=kube-apiserver 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 \
      -extfile server.ext 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 2 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # A static token: the tests' bearer-token identity (and the 401-then-reread path).
    token=$(openssl rand -hex 24)
    printf '%s' "$token" >token
    printf '%s,token-admin,token-admin-uid,"system:masters"\n' "$token" >tokens.csv
  )
}

kc_start_apiserver() {
  "$KC_BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$KC_ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$KC_API_PORT" \
    --tls-cert-file="$KC_DIR/server.crt" --tls-private-key-file="$KC_DIR/server.key" \
    --client-ca-file="$KC_DIR/ca.crt" --token-auth-file="$KC_DIR/tokens.csv" \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$KC_DIR/sa.pub" --service-account-signing-key-file="$KC_DIR/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=RBAC \
    --profiling=false --enable-priority-and-fairness=false \
    >>"$KC_DIR/apiserver.log" 2>&1 &
  echo $! >"$KC_DIR/apiserver.pid"
}

kc_wait_ready() {
  local i
  for i in $(seq 1 240); do
    if curl -fsS --cacert "$KC_DIR/ca.crt" --cert "$KC_DIR/admin.crt" --key "$KC_DIR/admin.key" \
      "https://127.0.0.1:$KC_API_PORT/readyz" >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$(cat "$KC_DIR/apiserver.pid")" 2>/dev/null || { tail -30 "$KC_DIR/apiserver.log" >&2; return 1; }
    sleep 0.5
  done
  echo "kube-apiserver not ready after 120 s" >&2
  tail -30 "$KC_DIR/apiserver.log" >&2
  return 1
}

kc_stop_pidfile() {
  local f=$1 pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || return 0
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

kc_down() {
  [ -n "${KC_DIR:-}" ] || return 0
  kc_stop_pidfile "$KC_DIR/apiserver.pid"
  kc_stop_pidfile "$KC_DIR/etcd.pid"
  if [ -n "${KC_KEEP:-}" ]; then echo "kept $KC_DIR" >&2; else rm -rf "$KC_DIR"; fi
}

kc_up() {
  KC_BIN=${SANDMAN_K8S_BIN:-}
  if [ -z "$KC_BIN" ]; then KC_BIN=$("$KC_ROOT/scripts/k8s-control-plane.sh"); fi
  for p in etcd kube-apiserver; do
    [ -x "$KC_BIN/$p" ] || { echo "no $p in $KC_BIN (scripts/k8s-control-plane.sh builds it)" >&2; return 1; }
  done
  KC_DIR=$(mktemp -d /tmp/sandman-kc.XXXXXX)
  trap kc_down EXIT
  read -r KC_ETCD_PORT KC_PEER_PORT KC_API_PORT < <(kc_free_ports 3)
  kc_certs "$KC_DIR"
  "$KC_BIN/etcd" --name default --data-dir "$KC_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$KC_ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$KC_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$KC_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$KC_PEER_PORT" \
    --initial-cluster "default=http://127.0.0.1:$KC_PEER_PORT" --log-level warn \
    >"$KC_DIR/etcd.log" 2>&1 &
  echo $! >"$KC_DIR/etcd.pid"
  export KC_DIR KC_BIN KC_ETCD_PORT KC_API_PORT
  kc_start_apiserver
  kc_wait_ready
  # The restart command the tests run: a separate script, so it works from any process.
  cat >"$KC_DIR/restart-apiserver" <<EOF
#!/usr/bin/env bash
set -euo pipefail
source "$KC_ROOT/tests/k8s/control_plane.sh"
KC_DIR=$KC_DIR KC_BIN=$KC_BIN KC_ETCD_PORT=$KC_ETCD_PORT KC_API_PORT=$KC_API_PORT
kc_stop_pidfile "\$KC_DIR/apiserver.pid"
\${KC_DOWNTIME:+sleep \$KC_DOWNTIME}
kc_start_apiserver
kc_wait_ready
EOF
  chmod +x "$KC_DIR/restart-apiserver"
  cat >"$KC_DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$KC_API_PORT", certificate-authority: "$KC_DIR/ca.crt"}
users:
- name: admin
  user: {client-certificate: "$KC_DIR/admin.crt", client-key: "$KC_DIR/admin.key"}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
EOF
  export SANDMAN_TEST_KUBE_SERVER="https://127.0.0.1:$KC_API_PORT"
  export SANDMAN_TEST_KUBE_CA="$KC_DIR/ca.crt"
  export SANDMAN_TEST_KUBE_CERT="$KC_DIR/admin.crt" SANDMAN_TEST_KUBE_KEY="$KC_DIR/admin.key"
  export SANDMAN_TEST_KUBE_TOKEN_FILE="$KC_DIR/token"
  export SANDMAN_TEST_ETCD="http://127.0.0.1:$KC_ETCD_PORT"
  export SANDMAN_TEST_KUBE_RESTART="$KC_DIR/restart-apiserver"
  export KUBECONFIG="$KC_DIR/kubeconfig"
}

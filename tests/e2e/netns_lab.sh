# shellcheck shell=bash
# A "metadata server", a "LAN service" and a "public" service inside a network
# namespace this run creates, routed from the host through a veth pair, so a
# suite can prove that sessions cannot reach them (and can, where allowed)
# without ever probing a real address. Sourced after lib.sh; root only.
#
#   lab_up                 # sets LAB_NS; registers lab_down to run at exit
#   lab_probe_host SERVICE # what the host itself reads from ADDR:PORT ("" if nothing)

LAB_META=169.254.169.254
LAB_LAN=10.213.78.1      # in 10/8: a private range
LAB_PUBLIC=198.51.100.7  # TEST-NET-2: not a private range
LAB_HOST_SIDE=10.213.77.1
LAB_SIDE=10.213.77.2
LAB_SERVICES=("$LAB_META:80" "$LAB_LAN:8080" "$LAB_LAN:8081" "$LAB_PUBLIC:80")
LAB_NS=
LAB_HV=

lab_down() {
  [ -n "$LAB_NS" ] || return 0
  ip netns pids "$LAB_NS" 2>/dev/null | xargs -r kill 2>/dev/null
  local a
  for a in "$LAB_META" "$LAB_LAN" "$LAB_PUBLIC"; do ip route del "$a/32" via "$LAB_SIDE" dev "$LAB_HV" 2>/dev/null; done
  ip link del "$LAB_HV" 2>/dev/null
  ip netns del "$LAB_NS" 2>/dev/null
  LAB_NS=
}

lab_up() {
  [ "$(id -u)" = 0 ] || fail "the network namespace lab needs root"
  command -v ip >/dev/null || fail "iproute2 (ip) is not installed"
  local a
  for a in "$LAB_META" "$LAB_LAN" "$LAB_PUBLIC"; do
    [ -z "$(ip route show "$a/32")" ] || fail "a route to $a exists already (another lab running?)"
  done
  LAB_NS=e2elab$RUN
  LAB_HV=lab${RUN:0:8}h
  # lab_down runs from lib.sh's cleanup (which keeps the exit status).
  E2E_EXTRA_CLEANUP+=(lab_down)
  ip netns add "$LAB_NS" || fail "ip netns add"
  ip link add "$LAB_HV" type veth peer name "lab${RUN:0:8}n" || fail "veth"
  ip link set "lab${RUN:0:8}n" netns "$LAB_NS"
  ip addr add "$LAB_HOST_SIDE/30" dev "$LAB_HV"
  ip link set "$LAB_HV" up
  ip -n "$LAB_NS" addr add "$LAB_SIDE/30" dev "lab${RUN:0:8}n"
  ip -n "$LAB_NS" link set "lab${RUN:0:8}n" up
  ip -n "$LAB_NS" link set lo up
  for a in "$LAB_META" "$LAB_LAN" "$LAB_PUBLIC"; do
    ip -n "$LAB_NS" addr add "$a/32" dev lo
    ip route add "$a/32" via "$LAB_SIDE" dev "$LAB_HV" || fail "route to $a"
    ip route get "$a" | grep -q "dev $LAB_HV" || fail "the route to $a does not lead into the lab"
  done
  # socketserver, not http.server: binding does no reverse DNS lookup.
  cat >"$E2E_TMP/lab_server.py" <<'PY'
import socketserver, sys, threading
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(("%s:%d\n" % self.server.server_address).encode())
socketserver.ThreadingTCPServer.allow_reuse_address = True
for spec in sys.argv[1:]:
    h, p = spec.rsplit(":", 1)
    s = socketserver.ThreadingTCPServer((h, int(p)), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
threading.Event().wait()
PY
  ip netns exec "$LAB_NS" "$PY" "$E2E_TMP/lab_server.py" "${LAB_SERVICES[@]}" >/dev/null 2>&1 </dev/null &
  local i s up
  for i in $(seq 100); do
    up=1
    for s in "${LAB_SERVICES[@]}"; do ip netns exec "$LAB_NS" ss -Hltn | grep -q " $s " || up=0; done
    [ "$up" = 1 ] && break
    sleep 0.1
  done
  [ "$up" = 1 ] || fail "the lab's servers did not start"
  # The control: the host reaches every service, so "blocked" later means the rules.
  for s in "${LAB_SERVICES[@]}"; do assert_eq "$(lab_probe_host "$s")" "$s" "the host reaching lab service $s"; done
}

lab_probe_host() {
  timeout 3 bash -c "exec 3<>/dev/tcp/${1%:*}/${1##*:} && head -1 <&3" 2>/dev/null
}

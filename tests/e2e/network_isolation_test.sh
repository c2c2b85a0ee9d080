#!/usr/bin/env bash
# e2e: from inside a session (over real SSH) nothing that should be fenced off
# answers: a service of the host, another session, the cloud metadata address,
# a LAN service; a public address does, and so does the LAN service once
# --session-egress allows it (a restart with other flags takes effect for the
# running session). SSH in, directly and through the gateway, keeps working
# under --session-egress none. Every "blocked" has a control that reached the
# same target (from the host, or from the session under another policy).
# Usage: network_isolation_test.sh <path-to-sandman>
# ISOLATION_TEST_FLAGS="--isolate-host=false --session-egress off" runs it
# with the firewall off: it must then fail.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/netns_lab.sh"
e2e_init "$@"
lab_up
read -r -a EXTRA <<<"${ISOLATION_TEST_FLAGS:-}"
start_daemon "${EXTRA[@]}"

mkuser UA a
mkuser UB b
create_session "$UB" '"ttl_minutes":10'
B_IP=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$CONTAINER")
create_session "$UA" '"ttl_minutes":10'
A_PORT=$SSH_PORT A_KEY=$KEY
GW=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$NET")
[ -n "$GW" ] && [ -n "$B_IP" ] || fail "could not read the network's addresses (gateway '$GW', B '$B_IP')"

# A host service on the session network's own gateway address, answering a token.
HOST_PORT=$(free_port)
TOKEN_LINE=host-service-$RUN
"$PY" -c "
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$GW', $HOST_PORT)); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b'$TOKEN_LINE\n'); c.close()
" </dev/null &
BG_PIDS+=("$!")
for _ in $(seq 50); do (exec 3<>"/dev/tcp/$GW/$HOST_PORT") 2>/dev/null && break; sleep 0.1; done
assert_eq "$(lab_probe_host "$GW:$HOST_PORT")" "$TOKEN_LINE" "control: the host reaching its own listener on $GW:$HOST_PORT"

# probe TARGET...: from inside session A, one line per target: "TARGET <first line read>" or "TARGET BLOCKED".
probe() {
  local out
  out=$(sshc "$A_PORT" "$UA" "$A_KEY" "for t in $*; do ( r=\$(timeout 3 bash -c \"exec 3<>/dev/tcp/\${t%:*}/\${t##*:} && head -1 <&3\" 2>/dev/null | tr -d '\r'); echo \"\$t \${r:-BLOCKED}\" ) & done; wait") ||
    fail "ssh into session A failed"
  PROBE=$out
}
# outcome TARGET: what the last probe read from TARGET.
outcome() { awk -v t="$1" '$1 == t { $1 = ""; sub(/^ /, ""); print; exit }' <<<"$PROBE"; }

note "default policy, from inside session A"
probe 127.0.0.1:2222 "$GW:$HOST_PORT" "$B_IP:2222" "${LAB_SERVICES[@]}"
# The probe itself works inside: the session's own sshd answers.
assert_match "$(outcome 127.0.0.1:2222)" '^SSH-2\.0-' "control: session A reading its own sshd banner"
assert_eq "$(outcome "$GW:$HOST_PORT")" BLOCKED "session A reaching a service of the host"
assert_eq "$(outcome "$B_IP:2222")" BLOCKED "session A reaching session B's sshd"
assert_eq "$(outcome "$LAB_META:80")" BLOCKED "session A reaching the metadata address"
assert_eq "$(outcome "$LAB_LAN:8080")" BLOCKED "session A reaching a LAN service"
assert_eq "$(outcome "$LAB_PUBLIC:80")" "$LAB_PUBLIC:80" "session A reaching a public address"

note "restart with --session-egress none,$LAB_LAN/32:8080 (session A keeps running)"
stop_daemon
start_daemon "${EXTRA[@]}" --session-egress "none,$LAB_LAN/32:8080"
probe "${LAB_SERVICES[@]}" "$GW:$HOST_PORT"
assert_eq "$(outcome "$LAB_LAN:8080")" "$LAB_LAN:8080" "session A reaching the allowed LAN service"
assert_eq "$(outcome "$LAB_LAN:8081")" BLOCKED "session A reaching another port of the LAN host"
assert_eq "$(outcome "$LAB_PUBLIC:80")" BLOCKED "session A reaching a public address under none"
assert_eq "$(outcome "$LAB_META:80")" BLOCKED "session A reaching the metadata address under none"
assert_eq "$(outcome "$GW:$HOST_PORT")" BLOCKED "session A reaching a service of the host under none"
note "SSH in still works under none: direct port and gateway"
assert_eq "$(sshc "$A_PORT" "$UA" "$A_KEY" echo direct-ok)" direct-ok "ssh through the direct port"
wait_gw "$UA" "$A_KEY" 15 || fail "ssh through the gateway under --session-egress none"
assert_eq "$(sshg "$UA" "$A_KEY" echo gateway-ok </dev/null)" gateway-ok "ssh through the gateway"
stop_daemon
exit 0

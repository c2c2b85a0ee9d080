#!/usr/bin/env bash
# e2e: a session cannot reach another session or a service of the host, while SSH into it works.
# The host service is a listener this test starts on the session network's own gateway address.
# Usage: network_isolation_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon

mkuser UA a
mkuser UB b
create_session "$UB" '"ttl_minutes":10'
B_IP=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$NET\").IPAddress}}" "$CONTAINER")
create_session "$UA" '"ttl_minutes":10'
GW=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$NET")
[ -n "$GW" ] && [ -n "$B_IP" ] || fail "could not read the network's addresses (gateway '$GW', B '$B_IP')"

HOST_PORT=$(free_port)
"$PY" -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('$GW', $HOST_PORT)); s.listen(8)
while True:
    c, _ = s.accept(); c.sendall(b'host-service\n'); c.close()
" &
LISTENER=$!
BG_PIDS+=("$LISTENER")
for _ in $(seq 50); do (exec 3<>"/dev/tcp/$GW/$HOST_PORT") 2>/dev/null && break; sleep 0.1; done
got=$(timeout 5 bash -c "exec 3<>/dev/tcp/$GW/$HOST_PORT; head -1 <&3") || true
assert_eq "$got" host-service "the host itself reaches its listener on $GW:$HOST_PORT"

note "from inside session A"
out=$(sshc "$SSH_PORT" "$UA" "$KEY" "timeout 3 bash -c 'exec 3<>/dev/tcp/$GW/$HOST_PORT && head -1 <&3' 2>&1; echo rc=\$?") \
  || fail "ssh into session A failed"
assert_not_contains "$out" host-service "a session reading a host service"
assert_contains "$out" "rc=" "probe ran"
out=$(sshc "$SSH_PORT" "$UA" "$KEY" "timeout 3 bash -c 'exec 3<>/dev/tcp/$B_IP/2222 && head -1 <&3' 2>&1; echo rc=\$?") \
  || fail "ssh into session A failed"
assert_not_contains "$out" SSH- "session A reading session B's sshd banner"
kill "$LISTENER" 2>/dev/null
stop_daemon
exit 0

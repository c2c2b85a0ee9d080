#!/usr/bin/env bash
# e2e: crash and restart recovery. After `kill -9` of the daemon, a container removed behind its back
# and a stray container carrying its instance label, the restarted daemon keeps the live session
# (same port, key and host key), removes the stray, ends the session whose container is gone and
# does not hand out a live session's port. A SIGTERM'd daemon leaves sessions running; the next one
# serves them, and reaps a session that expired while no daemon ran.
# Usage: sessions_recovery_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon

mkuser UA a
mkuser UB b
mkuser UC c
mkuser UE e

# pinned_ssh PORT USER KEY KNOWN_HOSTS cmd...: ssh that insists on the pinned host key.
pinned_ssh() {
  local p=$1 u=$2 k=$3 kh=$4
  shift 4
  ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$kh" -o LogLevel=ERROR \
    -o ConnectTimeout=5 -o IdentitiesOnly=yes -i "$k" -p "$p" "$u@127.0.0.1" "$@" </dev/null
}

note "two live sessions"
create_session "$UA" '"ttl_minutes":10'
SID_A=$SID PORT_A=$SSH_PORT KEY_A=$KEY CONT_A=$CONTAINER
printf '%s\n' "$(jb .ssh_host_key)" >"$E2E_TMP/known_hosts_a"
create_session "$UB" '"ttl_minutes":10'
SID_B=$SID PORT_B=$SSH_PORT KEY_B=$KEY CONT_B=$CONTAINER
wait_ssh "$PORT_A" "$UA" "$KEY_A" 15 || fail "cannot ssh into $SID_A"
wait_ssh "$PORT_B" "$UB" "$KEY_B" 15 || fail "cannot ssh into $SID_B"
pinned_ssh "$PORT_A" "$UA" "$KEY_A" "$E2E_TMP/known_hosts_a" true || fail "pinned ssh into $SID_A failed before the crash"

INST=$(docker inspect -f '{{index .Config.Labels "sandman.instance"}}' "$CONT_A") || fail "cannot inspect $CONT_A"
[ -n "$INST" ] || fail "container $CONT_A has no sandman.instance label"
STRAY=e2e-stray-$RUN
EXTRA_CONTAINERS+=("$STRAY")
docker run -d --name "$STRAY" --label sandman.session=s-0000000000000000 --label "sandman.instance=$INST" \
  --label "e2e.run=$RUN" "$IMAGE" sleep 600 >/dev/null || fail "cannot start the stray container"

note "kill -9 the daemon; remove $UB's container behind its back"
kill9_daemon
[ "$(docker inspect -f '{{.State.Running}}' "$CONT_A")" = true ] || fail "$UA's container stopped when the daemon was killed"
docker rm -f "$CONT_B" >/dev/null || fail "cannot remove $CONT_B"

note "restart with the same flags and store"
restart_daemon
for i in $(seq 50); do docker container inspect "$STRAY" >/dev/null 2>&1 || break; sleep 0.1; done
docker container inspect "$STRAY" >/dev/null 2>&1 && fail "stray container $STRAY (sandman.instance=$INST, no live session) was not removed at start-up"

api GET "/api/v1/sessions/$SID_A"
assert_code 200 "GET $SID_A after restart"
assert_json ".status == \"running\" and .ssh_port == $PORT_A and .container_id == \"$CONT_A\"" "$SID_A after restart"
pinned_ssh "$PORT_A" "$UA" "$KEY_A" "$E2E_TMP/known_hosts_a" 'id -un' >"$E2E_TMP/a.out" ||
  fail "$UA cannot ssh into $SID_A with the original key and pinned host key after the restart"
assert_eq "$(<"$E2E_TMP/a.out")" "$UA" "login user of $SID_A after restart"

api GET "/api/v1/sessions/$SID_B"
assert_code 200 "GET $SID_B after restart"
assert_json '.status == "ended" or .status == "failed"' "$SID_B (container removed behind the daemon's back) is ended or failed"
assert_contains "$(jb .end_reason)" container "end_reason of $SID_B"
api GET '/api/v1/sessions/stats'
assert_json '.by_status.running == 1 and .ports_in_use == 1' "stats after restart: only $SID_A live"

note "a new session does not take $UA's port"
create_session "$UC" '"ttl_minutes":10'
SID_C=$SID PORT_C=$SSH_PORT KEY_C=$KEY
note "ports: $SID_A=$PORT_A, $SID_B (ended)=$PORT_B, new $SID_C=$PORT_C"
assert_ne "$PORT_C" "$PORT_A" "port of the new session $SID_C (the live $SID_A holds it)"
wait_ssh "$PORT_C" "$UC" "$KEY_C" 15 || fail "cannot ssh into $SID_C"
pinned_ssh "$PORT_A" "$UA" "$KEY_A" "$E2E_TMP/known_hosts_a" true || fail "$SID_A unreachable after $SID_C started"

note "SIGTERM: sessions keep running without a daemon"
create_session "$UE" '"ttl_seconds":4'
SID_E=$SID EXP_E=$(jb .expires_at)
stop_daemon
assert_eq "$DAEMON_RC" 0 "exit status of the daemon on SIGTERM"
[ "$(docker inspect -f '{{.State.Running}}' "$CONT_A")" = true ] || fail "$UA's container stopped with the daemon (SIGTERM)"
pinned_ssh "$PORT_A" "$UA" "$KEY_A" "$E2E_TMP/known_hosts_a" true || fail "$SID_A unreachable while no daemon runs"
exp_e=$(ts "$EXP_E") || fail "expires_at unparsable"
while ! fle "$(fsub "$exp_e" 0.5)" "$(now)"; do sleep 0.1; done
sleep 0.5

note "restart after SIGTERM"
restart_daemon
api GET "/api/v1/sessions/$SID_A"
assert_json '.status == "running"' "$SID_A after the SIGTERM restart"
api GET "/api/v1/sessions/$SID_C"
assert_json '.status == "running"' "$SID_C after the SIGTERM restart"
pinned_ssh "$PORT_A" "$UA" "$KEY_A" "$E2E_TMP/known_hosts_a" true || fail "$SID_A unreachable after the SIGTERM restart"
sshc "$PORT_C" "$UC" "$KEY_C" true || fail "$SID_C unreachable after the SIGTERM restart"
wait_container_gone "$SID_E" 3 || fail "$SID_E expired while the daemon was down but its container is still there after restart"
api GET "/api/v1/sessions/$SID_E"
assert_json '.status == "ended" and .end_reason == "expired"' "$SID_E (expired while down) after restart"

note "the restarted daemon still manages the old sessions"
api PATCH "/api/v1/sessions/$SID_A" '{"ttl_minutes": 20}'
assert_code 200 "PATCH $SID_A after restart"
api DELETE "/api/v1/sessions/$SID_A"
assert_code 200 "DELETE $SID_A after restart"
wait_container_gone "$SID_A" 10 || fail "container of $SID_A still exists after DELETE"
for i in $(seq 30); do port_open "$PORT_A" || break; sleep 0.1; done
port_open "$PORT_A" && fail "port $PORT_A still open after deleting $SID_A"
api DELETE "/api/v1/sessions/$SID_C"
assert_code 200 "DELETE $SID_C after restart"
wait_container_gone "$SID_C" 10 || fail "container of $SID_C still exists after DELETE"
exit 0

#!/usr/bin/env bash
# e2e: what every session container is made of, seen from outside (docker
# inspect) and from inside (the user's own shell over real SSH): sandman-init
# is PID 1 with sshd under it, the user killing sshd or signalling PID 1 does
# not end the session and a new login works; the image's ENTRYPOINT is
# replaced; logs rotate; images outside --allowed-images are refused with 400.
# Usage: session_hardening_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon --container-log-max-size 5m --container-log-max-files 2

mkuser U h
create_session "$U" '"ttl_minutes":10'

note "outside: docker inspect"
assert_eq "$(docker inspect -f '{{json .Config.Entrypoint}}' "$CONTAINER")" '["/.sandman/init","--"]' "ENTRYPOINT"
assert_eq "$(docker inspect -f '{{json .HostConfig.LogConfig}}' "$CONTAINER")" \
  '{"Type":"json-file","Config":{"max-file":"2","max-size":"5m"}}' "log rotation"
assert_contains "$(docker inspect -f '{{json .HostConfig.Binds}}' "$CONTAINER")" ':/.sandman/init:ro"' "init mounted read-only"
assert_eq "$(docker inspect -f '{{json .HostConfig.CapDrop}}' "$CONTAINER")" '["ALL"]' "no capabilities"
grep -q "writable layers" "$DAEMON_LOG" || fail "start-up says whether writable layers are size-limited"

note "inside: PID 1 and sshd"
out=$(sshc "$SSH_PORT" "$U" "$KEY" 'tr "\0" " " </proc/1/cmdline; echo; ps -o user= -p 1; ps -o pid=,args= --ppid 1')
assert_contains "$out" "/.sandman/init -- /usr/sbin/sshd" "PID 1 is sandman-init running sshd"
assert_contains "$out" "$U" "PID 1 runs as the session user"
LISTENER=$(awk '/listener/ {print $1; exit}' <<<"$out")
[ -n "$LISTENER" ] || fail "no sshd listener under PID 1 in: $out"

note "the user kills sshd and signals PID 1 (pid $LISTENER)"
sshc "$SSH_PORT" "$U" "$KEY" "kill -KILL $LISTENER; for s in TERM INT HUP QUIT KILL; do kill -\$s 1 2>/dev/null; done; echo done" >/dev/null ||
  fail "ssh into the session failed"
assert_eq "$(docker inspect -f '{{.State.Running}}' "$CONTAINER")" true "the container is still running"
ok=
for _ in $(seq 50); do
  out=$(sshc "$SSH_PORT" "$U" "$KEY" 'ps -o pid=,args= --ppid 1' 2>/dev/null) && { ok=1; break; }
  sleep 0.2
done
[ -n "$ok" ] || fail "no new login after sshd was killed"
NEW=$(awk '/listener/ {print $1; exit}' <<<"$out")
[ -n "$NEW" ] && [ "$NEW" != "$LISTENER" ] || fail "expected a new sshd listener, got '$NEW' (was $LISTENER)"
assert_eq "$(sshg "$U" "$KEY" echo via-gateway </dev/null)" via-gateway "a login through the gateway"
api GET "/api/v1/sessions/$SID"
assert_code 200 "session lookup"
assert_eq "$(jb .status)" running "the session is still running"
assert_contains "$(docker logs "$CONTAINER" 2>&1)" "ignored signal 15" "init says it ignored SIGTERM from inside"

note "images outside --allowed-images"
OTHER=e2e-other-$RUN:latest
docker tag "$IMAGE" "$OTHER" || fail "docker tag"
untag() { docker rmi "$OTHER" >/dev/null 2>&1; }
E2E_EXTRA_CLEANUP+=(untag)
mkuser U2 i
api POST /api/v1/sessions "{\"user_id\":\"$U2\",\"image\":\"$OTHER\",\"ttl_minutes\":5}"
sid=$(jb '.session_id // empty'); [ -n "$sid" ] && SIDS+=("$sid")
assert_code 400 "a session from an image that is not allowed"
assert_error_json "refused image"
assert_contains "$(jb .error)" "not allowed" "the refusal says why"
assert_contains "$(jb .error)" "--allowed-images" "the refusal says how to allow it"

note "allowed once listed"
stop_daemon
start_daemon --allowed-images "$OTHER"
mkuser U3 j
create_session "$U3" "\"image\":\"$OTHER\",\"ttl_minutes\":5"
assert_eq "$(sshc "$SSH_PORT" "$U3" "$KEY" echo ok)" ok "login into a session of an allowed image"
stop_daemon
exit 0

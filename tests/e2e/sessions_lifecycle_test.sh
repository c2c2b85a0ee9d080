#!/usr/bin/env bash
# e2e: a session's whole life over REST and the real OpenSSH client: create, log in, pin the host key,
# hardening, scp, list/filter/stats, one live session per user, delete (workspace kept, key dead),
# re-create sees the files, TTL changes, delete-all, and a user-supplied public key.
# Usage: sessions_lifecycle_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon --ttl-max 120

mkuser UA a
mkuser UB b

# ------------------------------------------------------------------ create
note "create a session for $UA"
t_create=$(now)
create_session "$UA" '"ttl_minutes":10'
SID_A=$SID PORT_A=$SSH_PORT KEY_A=$KEY CONT_A=$CONTAINER
assert_match "$SID_A" '^s-[0-9a-f]{16}$' "session_id"
assert_json '.container_id | type == "string" and length >= 12' "container_id is set"
assert_eq "$(jb .ssh_user)" "$UA" "ssh_user"
assert_eq "$(jb .ssh_host)" "127.0.0.1" "ssh_host (from --ssh-host)"
assert_json ".ssh_port >= $SSH_START and .ssh_port <= $SSH_END" "ssh_port within --ssh-port-start/--ssh-port-end"
assert_json '.ssh_private_key | type == "string" and startswith("-----BEGIN OPENSSH PRIVATE KEY-----")' "ssh_private_key is an OpenSSH private key"
assert_json 'has("gpu_uuid") and .gpu_uuid == null' "gpu_uuid is null without a GPU backend"
assert_eq "$(jb .status)" running "status"
assert_match "$(jb .created_at)" "$RFC3339_RE" "created_at is RFC3339"
assert_match "$(jb .expires_at)" "$RFC3339_RE" "expires_at is RFC3339"
created=$(ts "$(jb .created_at)") || fail "created_at unparsable"
expires=$(ts "$(jb .expires_at)") || fail "expires_at unparsable"
fabs_le "$(fsub "$(fsub "$expires" "$created")" 600)" 1 || fail "expires_at - created_at should be 600 s (ttl_minutes 10), is $(fsub "$expires" "$created")"
fabs_le "$(fsub "$created" "$t_create")" 5 || fail "created_at $(jb .created_at) is not about now"
assert_contains "$(jb .ssh_command)" "-p $PORT_A" "ssh_command names the port"
assert_contains "$(jb .ssh_command)" "$UA@127.0.0.1" "ssh_command names user@host"
HOSTKEY_A=$(jb .ssh_host_key)
assert_match "$HOSTKEY_A" "^\[127\.0\.0\.1\]:$PORT_A ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+$" "ssh_host_key is a known_hosts line"
[ "$(docker inspect -f '{{index .Config.Labels "sandman.session"}}' "$CONT_A" 2>/dev/null)" = "$SID_A" ] ||
  fail "container $CONT_A does not exist or is not labelled sandman.session=$SID_A"
[ "$(docker inspect -f '{{.State.Running}}' "$CONT_A")" = true ] || fail "container $CONT_A is not running"

# ------------------------------------------------------------------ ssh in
note "ssh in"
wait_ssh "$PORT_A" "$UA" "$KEY_A" 15 || fail "cannot ssh into session $SID_A on port $PORT_A"
out=$(sshc "$PORT_A" "$UA" "$KEY_A" 'id -un; pwd') || fail "ssh 'id -un; pwd' failed"
assert_eq "$out" "$UA"$'\n'"/workspace" "login user and directory"
out=$(sshc "$PORT_A" "$UA" "$KEY_A" 'ls -a /workspace') || fail "ssh ls failed"
for f in projects data .bashrc; do
  grep -qx -- "$f" <<<"$out" || fail "/workspace lacks $f: $(tr '\n' ' ' <<<"$out")"
done

note "pin the host key from the response"
KH=$E2E_TMP/known_hosts_a
printf '%s\n' "$HOSTKEY_A" >"$KH"
ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$KH" -o LogLevel=ERROR \
  -o ConnectTimeout=5 -o IdentitiesOnly=yes -i "$KEY_A" -p "$PORT_A" "$UA@127.0.0.1" true </dev/null ||
  fail "ssh with StrictHostKeyChecking=yes and the response's ssh_host_key failed: the host key does not match"
ssh-keygen -q -t ed25519 -N '' -f "$E2E_TMP/keys/otherhost" >/dev/null || fail "ssh-keygen failed"
printf '[127.0.0.1]:%s %s\n' "$PORT_A" "$(cut -d' ' -f1,2 "$E2E_TMP/keys/otherhost.pub")" >"$E2E_TMP/known_hosts_wrong"
if ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$E2E_TMP/known_hosts_wrong" \
  -o LogLevel=QUIET -o ConnectTimeout=5 -o IdentitiesOnly=yes -i "$KEY_A" -p "$PORT_A" "$UA@127.0.0.1" true </dev/null; then
  fail "ssh accepted a host key other than the pinned one (sanity check of the pinning test)"
fi

note "hardening"
out=$(sshc "$PORT_A" "$UA" "$KEY_A" 'grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; whoami') || fail "ssh hardening probe failed"
grep -Eq '^CapEff:[[:space:]]+0{16}$' <<<"$out" || fail "session process has effective capabilities: $out"
grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$out" || fail "no_new_privs is not set: $out"
assert_ne "$(tail -1 <<<"$out")" root "whoami in the session"
if sshc "$PORT_A" "$UA" "$KEY_A" 'cat /etc/shadow' >/dev/null 2>&1; then fail "the session user can read /etc/shadow"; fi

note "scp 1 MiB in and back out"
head -c 1048576 /dev/urandom >"$E2E_TMP/blob"
SUM=$(sha256sum "$E2E_TMP/blob" | cut -d' ' -f1)
scpc "$PORT_A" "$KEY_A" "$E2E_TMP/blob" "$UA@127.0.0.1:/workspace/data/blob" || fail "scp into /workspace/data failed"
scpc "$PORT_A" "$KEY_A" "$UA@127.0.0.1:/workspace/data/blob" "$E2E_TMP/blob.back" || fail "scp out of the session failed"
assert_eq "$(sha256sum "$E2E_TMP/blob.back" | cut -d' ' -f1)" "$SUM" "sha256 of the file copied in and back out"

# ------------------------------------------------------------------ read APIs
note "get, list, filter, stats"
api GET "/api/v1/sessions/$SID_A"
assert_code 200 "GET /api/v1/sessions/$SID_A"
assert_json ".session_id == \"$SID_A\" and .status == \"running\" and .user_id == \"$UA\" and .ssh_port == $PORT_A" "GET shows the session"
assert_json 'has("ssh_private_key") | not' "GET never returns the private key"
api GET /sessions
assert_code 200 "GET /sessions (bare seed path)"
assert_json "type == \"array\" and any(.[]; .session_id == \"$SID_A\")" "GET /sessions lists the session"
api GET "/api/v1/sessions?user_id=$UA&status=running"
assert_code 200 "GET /api/v1/sessions?user_id=$UA&status=running"
assert_json "length == 1 and .[0].session_id == \"$SID_A\"" "user_id+status filter returns exactly the session"
api GET "/api/v1/sessions?user_id=$UB"
assert_code 200 "GET /api/v1/sessions?user_id=$UB"
assert_json 'length == 0' "filter by a user without sessions is empty"
api GET "/api/v1/sessions?user_id=$UA&status=ended"
assert_code 200 "GET /api/v1/sessions?status=ended"
assert_json 'length == 0' "status=ended filter excludes the running session"
api GET /api/v1/sessions/stats
assert_code 200 "GET /api/v1/sessions/stats"
assert_json '.by_status.running >= 1' "stats by_status.running counts the session"
assert_json '.ports_in_use >= 1' "stats ports_in_use counts the session's port"

note "one live session per user"
api POST /api/v1/sessions "{\"user_id\":\"$UA\",\"ttl_minutes\":10}"
assert_code 409 "second create for $UA"
assert_error_json "409 on second create"
assert_contains "$(jb .error)" "$SID_A" "409 error names the existing session"

# ------------------------------------------------------------------ user-supplied key
note "create with ssh_public_key"
ssh-keygen -q -t ed25519 -N '' -C "e2e-$RUN" -f "$E2E_TMP/keys/userkey" >/dev/null || fail "ssh-keygen failed"
pub=$(<"$E2E_TMP/keys/userkey.pub")
create_session "$UB" "\"ttl_minutes\":10,\"ssh_public_key\":$(jq -Rn --arg k "$pub" '$k')"
SID_B=$SID PORT_B=$SSH_PORT
assert_json 'has("ssh_private_key") | not' "no ssh_private_key when the caller gave ssh_public_key"
assert_ne "$PORT_B" "$PORT_A" "two live sessions share a port"
wait_ssh "$PORT_B" "$UB" "$E2E_TMP/keys/userkey" 15 || fail "cannot log in with the caller's own key to $SID_B"
assert_eq "$(sshc "$PORT_B" "$UB" "$E2E_TMP/keys/userkey" 'id -un')" "$UB" "login user with own key"
if sshc "$PORT_B" "$UB" "$KEY_A" true 2>/dev/null; then fail "$UA's key opens $UB's session"; fi

# ------------------------------------------------------------------ delete
note "delete $SID_A"
api DELETE "/api/v1/sessions/$SID_A"
assert_code 200 "DELETE /api/v1/sessions/$SID_A"
assert_eq "$(jb .status)" ended "status in the DELETE response"
wait_container_gone "$SID_A" 10 || fail "container of $SID_A still exists after DELETE"
docker container inspect "$CONT_A" >/dev/null 2>&1 && fail "container $CONT_A still exists after DELETE"
[ -f "$WS/$UA/data/blob" ] || fail "workspace file $WS/$UA/data/blob is gone after DELETE"
assert_eq "$(sha256sum "$WS/$UA/data/blob" | cut -d' ' -f1)" "$SUM" "workspace file kept on the host after DELETE"
for i in $(seq 30); do port_open "$PORT_A" || break; sleep 0.1; done
port_open "$PORT_A" && fail "port $PORT_A still accepts connections after DELETE"
if sshc "$PORT_A" "$UA" "$KEY_A" true 2>/dev/null; then fail "the deleted session's key still logs in"; fi

note "a new session for $UA sees the workspace"
create_session "$UA" '"ttl_minutes":10'
SID_A2=$SID PORT_A2=$SSH_PORT KEY_A2=$KEY
assert_ne "$SID_A2" "$SID_A" "new session id"
wait_ssh "$PORT_A2" "$UA" "$KEY_A2" 15 || fail "cannot ssh into the new session $SID_A2"
sum2=$(sshc "$PORT_A2" "$UA" "$KEY_A2" 'sha256sum /workspace/data/blob' | cut -d' ' -f1)
assert_eq "$sum2" "$SUM" "sha256 of /workspace/data/blob in the new session"
if sshc "$PORT_A2" "$UA" "$KEY_A" true 2>/dev/null; then fail "the old session's key logs into the new session"; fi

api GET "/api/v1/sessions/$SID_A"
assert_code 200 "GET of the deleted session"
assert_json '.status == "ended" and (.ended_at | type == "string")' "deleted session reads as ended with ended_at"
api PATCH "/api/v1/sessions/$SID_A" '{"ttl_minutes": 5}'
assert_code 409 "PATCH of an ended session"
assert_error_json "PATCH of an ended session"

note "two concurrent creates for one user: one wins"
mkuser UC c
race_pids=()
for n in 1 2; do
  curl -sS --max-time 60 -o "$E2E_TMP/race$n.json" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "{\"user_id\":\"$UC\",\"ttl_minutes\":10}" \
    "$API/api/v1/sessions" >"$E2E_TMP/race$n.code" 2>/dev/null &
  race_pids+=($!)
done
wait "${race_pids[@]}"
for n in 1 2; do
  s=$(jq -r '.session_id? // empty' "$E2E_TMP/race$n.json" 2>/dev/null)
  [ -n "$s" ] && track_session "$s"
done
codes=$(printf '%s\n' "$(<"$E2E_TMP/race1.code")" "$(<"$E2E_TMP/race2.code")" | sort | tr '\n' ' ')
assert_eq "$codes" "201 409 " "HTTP codes of two concurrent creates for $UC"
api GET "/api/v1/sessions?user_id=$UC"
assert_json 'length == 1 and .[0].status == "running"' "sessions of $UC after the race"
[ "$(docker ps -q --filter "label=sandman.user=$UC" | wc -l)" = 1 ] || fail "$UC has not exactly one container after the race"

# ------------------------------------------------------------------ TTL
note "PATCH the TTL"
t0=$(now)
api PATCH "/api/v1/sessions/$SID_A2" '{"ttl_minutes": 5}'
assert_code 200 "PATCH {\"ttl_minutes\": 5}"
exp=$(ts "$(jb .expires_at)") || fail "expires_at unparsable: $BODY"
fabs_le "$(fsub "$exp" "$(awk -v a="$t0" 'BEGIN{printf "%.3f", a+300}')")" 5 ||
  fail "after PATCH ttl_minutes 5, expires_at $(jb .expires_at) is not about now+5min"
api PATCH "/api/v1/sessions/$SID_A2" '{"ttl_minutes": 121}'
assert_code 400 "PATCH beyond --ttl-max 120"
assert_error_json "PATCH beyond --ttl-max"
api GET "/api/v1/sessions/$SID_A2"
exp2=$(ts "$(jb .expires_at)") || fail "expires_at unparsable"
fabs_le "$(fsub "$exp2" "$exp")" 0.001 || fail "a rejected PATCH changed expires_at ($exp -> $exp2)"

# ------------------------------------------------------------------ delete all
note "DELETE /sessions needs confirm"
api DELETE /api/v1/sessions
assert_code 400 "DELETE /api/v1/sessions without confirm"
assert_error_json "DELETE all without confirm"
api GET "/api/v1/sessions/$SID_A2"
assert_eq "$(jb .status)" running "session after an unconfirmed DELETE all"
[ -n "$(docker ps -q --filter "label=sandman.session=$SID_A2")" ] || fail "container of $SID_A2 gone after an unconfirmed DELETE all"

api DELETE '/api/v1/sessions?confirm=true'
assert_code 200 "DELETE /api/v1/sessions?confirm=true"
api GET '/api/v1/sessions?status=running'
assert_json 'length == 0' "no running sessions after DELETE all"
for s in "$SID_A2" "$SID_B" $(jq -r ".session_id? // empty" "$E2E_TMP"/race[12].json); do
  api GET "/api/v1/sessions/$s"
  assert_eq "$(jb .status)" ended "status of $s after DELETE all"
  wait_container_gone "$s" 10 || fail "container of $s still exists after DELETE all"
done
api GET /api/v1/sessions/stats
assert_json '.ports_in_use == 0 and .by_status.running == 0' "stats after DELETE all"
exit 0

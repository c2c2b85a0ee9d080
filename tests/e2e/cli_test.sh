#!/usr/bin/env bash
# e2e: the admin CLI (`sandman sessions ...`) against a running daemon: create prints a working ssh
# command and writes a 0600 key, ls (table and JSON), show, extend, rm; the server's errors reach the
# user; an unreachable daemon is a clear non-zero exit; `serve --help` documents every flag; and the
# connection options are accepted after the subcommand, as in the issue's example.
# Usage: cli_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon

mkuser U1 c
mkuser U2 d
CONN=(--server "$API" --token-file "$TOKEN_FILE")

# cli ARGS...: runs `sandman sessions ARGS`; sets OUT, ERR, RC.
cli() {
  timeout 60 "$SANDMAN" sessions "$@" >"$E2E_TMP/cli.out" 2>"$E2E_TMP/cli.err" </dev/null
  RC=$?
  OUT=$(<"$E2E_TMP/cli.out")
  ERR=$(<"$E2E_TMP/cli.err")
}

# connect_line: the ssh command printed under "Connect with:".
connect_line() { awk '/^Connect with:/{getline; sub(/^[ \t]+/, ""); print; exit}' <<<"$OUT"; }

# run_printed_ssh CMDLINE remote-cmd...: runs the printed ssh command with batch/host-key options added.
run_printed_ssh() {
  local words
  read -ra words <<<"$1"
  shift
  [ "${words[0]}" = ssh ] || fail "printed command does not start with ssh: $1"
  ssh "${SSH_OPTS[@]}" "${words[@]:1}" "$@" </dev/null
}

# --------------------------------------------------------------- serve --help
note "serve --help"
help=$("$SANDMAN" serve --help 2>&1) || fail "sandman serve --help exited non-zero: $help"
for f in --bind --port --db --workspace-root --image --ssh-port-start --ssh-port-end --ssh-bind --ssh-host \
  --ttl-default --ttl-max --memory --cpus --pids-limit --network --docker-host --auth --token-file --log-format; do
  grep -qE -- "(^|[[:space:],])$f([[:space:]=,]|$)" <<<"$help" || fail "sandman serve --help does not list $f"
done

# --------------------------------------------------------------- create
note "create"
cli "${CONN[@]}" create --user "$U1" --ttl 10 --key-out "$E2E_TMP/keys/k1"
SID1=$(awk '$1 == "session_id" {print $2}' <<<"$OUT")
[ -n "$SID1" ] && track_session "$SID1"
[ "$RC" = 0 ] || fail "sessions create exited $RC: $ERR $OUT"
assert_match "$SID1" '^s-[0-9a-f]{16}$' "session id printed by create"
SSHCMD=$(connect_line)
assert_match "$SSHCMD" '^ssh ' "create prints an ssh command"
assert_contains "$SSHCMD" "-i $E2E_TMP/keys/k1" "printed ssh command uses the key file"
assert_contains "$SSHCMD" "$U1@127.0.0.1" "printed ssh command names user@host"
[ -f "$E2E_TMP/keys/k1" ] || fail "--key-out file was not written"
assert_eq "$(stat -c %a "$E2E_TMP/keys/k1")" 600 "mode of the key file"
assert_not_contains "$OUT" "PRIVATE KEY" "create output"
api GET "/api/v1/sessions/$SID1"
assert_json '.status == "running" and .expires_at != null' "session created by the CLI"
exp=$(ts "$(jb .expires_at)") && cre=$(ts "$(jb .created_at)") || fail "bad times: $BODY"
fabs_le "$(fsub "$(fsub "$exp" "$cre")" 600)" 1 || fail "--ttl 10 did not give a 10 minute TTL: $BODY"
PORT1=$(jb .ssh_port)
ok=0
for i in $(seq 50); do
  if out=$(run_printed_ssh "$SSHCMD" 'id -un; pwd' 2>/dev/null); then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || fail "the printed ssh command does not log in: $SSHCMD"
assert_eq "$out" "$U1"$'\n'"/workspace" "login via the printed ssh command"

# --------------------------------------------------------------- ls / show
note "ls, -o json ls, show"
cli "${CONN[@]}" ls
[ "$RC" = 0 ] || fail "sessions ls exited $RC: $ERR"
head -1 <<<"$OUT" | grep -q SESSION || fail "sessions ls has no table header: $OUT"
grep -E "^${SID1}[[:space:]]+${U1}[[:space:]]+running[[:space:]]+${PORT1}[[:space:]]" <<<"$OUT" >/dev/null ||
  fail "sessions ls has no row '$SID1 $U1 running $PORT1': $OUT"
cli "${CONN[@]}" -o json ls
[ "$RC" = 0 ] || fail "sessions -o json ls exited $RC: $ERR"
jq -e "type == \"array\" and any(.[]; .session_id == \"$SID1\" and .status == \"running\")" <<<"$OUT" >/dev/null ||
  fail "sessions -o json ls is not a JSON array holding $SID1: $OUT"
cli "${CONN[@]}" ls --user "$U2"
[ "$RC" = 0 ] || fail "sessions ls --user exited $RC: $ERR"
grep -q "$SID1" <<<"$OUT" && fail "sessions ls --user $U2 shows $U1's session: $OUT"
cli "${CONN[@]}" show "$SID1"
[ "$RC" = 0 ] || fail "sessions show exited $RC: $ERR"
grep -Eq "^session_id[[:space:]]+$SID1$" <<<"$OUT" || fail "show lacks session_id $SID1: $OUT"
grep -Eq "^status[[:space:]]+running$" <<<"$OUT" || fail "show lacks status running: $OUT"
cli "${CONN[@]}" -o json show "$SID1"
jq -e ".session_id == \"$SID1\"" <<<"$OUT" >/dev/null || fail "sessions -o json show is not the session's JSON: $OUT"

# --------------------------------------------------------------- extend / rm
note "extend, rm"
t0=$(now)
cli "${CONN[@]}" extend "$SID1" --ttl 30
[ "$RC" = 0 ] || fail "sessions extend exited $RC: $ERR"
api GET "/api/v1/sessions/$SID1"
exp=$(ts "$(jb .expires_at)") || fail "expires_at unparsable"
fabs_le "$(fsub "$exp" "$(awk -v a="$t0" 'BEGIN{printf "%.3f", a+1800}')")" 5 ||
  fail "after 'extend --ttl 30' expires_at $(jb .expires_at) is not about now+30min"
cli "${CONN[@]}" rm "$SID1"
[ "$RC" = 0 ] || fail "sessions rm exited $RC: $ERR"
grep -Eq "^status[[:space:]]+ended$" <<<"$OUT" || fail "rm does not print status ended: $OUT"
wait_container_gone "$SID1" 10 || fail "container of $SID1 still exists after 'sessions rm'"
api GET "/api/v1/sessions/$SID1"
assert_eq "$(jb .status)" ended "status after 'sessions rm'"
cli "${CONN[@]}" ls
[ "$RC" = 0 ] || fail "sessions ls exited $RC: $ERR"
grep -q "$SID1" <<<"$OUT" && fail "sessions ls (active only) still shows ended $SID1: $OUT"
cli "${CONN[@]}" ls --all
[ "$RC" = 0 ] || fail "sessions ls --all exited $RC: $ERR"
grep -E "^${SID1}[[:space:]]+${U1}[[:space:]]+ended[[:space:]]" <<<"$OUT" >/dev/null ||
  fail "sessions ls --all has no row '$SID1 $U1 ended': $OUT"

# --------------------------------------------------------------- errors
note "errors"
api POST /api/v1/sessions '{"user_id":"Alice"}'
SERVER_ERR=$(jb .error)
cli "${CONN[@]}" create --user Alice --ttl 10 --key-out "$E2E_TMP/keys/kbad"
[ "$RC" != 0 ] || fail "create with a bad user id exited 0"
assert_contains "$ERR$OUT" "$SERVER_ERR" "CLI output for a bad user id (the server's error)"
[ -e "$E2E_TMP/keys/kbad" ] && fail "a key file was written for a failed create"
cli "${CONN[@]}" show s-0123456789abcdef
[ "$RC" != 0 ] || fail "show of an unknown id exited 0"
DEAD_PORT=$(free_port) || fail "no free port"
t0=$(now)
cli --server "http://127.0.0.1:$DEAD_PORT" --token-file "$TOKEN_FILE" ls
[ "$RC" != 0 ] || fail "ls against an unreachable --server exited 0"
[ "$RC" != 124 ] || fail "ls against an unreachable --server hung for 60 s"
assert_contains "$ERR" "127.0.0.1:$DEAD_PORT" "message for an unreachable --server names it"
grep -qiE "cannot reach|connect|unreachable" <<<"$ERR" || fail "message for an unreachable --server is unclear: $ERR"

# --------------------------------------------------------------- issue's argument order
note "connection options after the subcommand (issue's example)"
cli create --user "$U2" --ttl 10 --server "$API" --token-file "$TOKEN_FILE" --key-out "$E2E_TMP/keys/k2"
SID2=$(awk '$1 == "session_id" {print $2}' <<<"$OUT")
[ -n "$SID2" ] && track_session "$SID2"
[ "$RC" = 0 ] || fail "'sandman sessions create --user U --ttl 10 --server URL --token-file F --key-out K' exited $RC: ${ERR:-$OUT}"
SSHCMD2=$(connect_line)
assert_match "$SSHCMD2" '^ssh ' "create (options after the subcommand) prints an ssh command"
assert_eq "$(stat -c %a "$E2E_TMP/keys/k2")" 600 "mode of the second key file"
ok=0
for i in $(seq 50); do
  if out=$(run_printed_ssh "$SSHCMD2" 'id -un' 2>/dev/null); then ok=1; break; fi
  sleep 0.2
done
[ "$ok" = 1 ] || fail "the printed ssh command does not log in: $SSHCMD2"
assert_eq "$out" "$U2" "login via the second printed ssh command"
cli ls --server "$API" --token-file "$TOKEN_FILE"
[ "$RC" = 0 ] || fail "'sessions ls --server ... --token-file ...' exited $RC: $ERR"
grep -q "$SID2" <<<"$OUT" || fail "sessions ls lacks $SID2: $OUT"
cli rm "$SID2" --server "$API" --token-file "$TOKEN_FILE"
[ "$RC" = 0 ] || fail "'sessions rm ID --server ... --token-file ...' exited $RC: $ERR"
wait_container_gone "$SID2" 10 || fail "container of $SID2 still exists after rm"
exit 0

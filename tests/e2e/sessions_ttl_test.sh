#!/usr/bin/env bash
# e2e: TTL expiry is on time. A 5 s session's container is gone within 1 s of expires_at, the session
# reads ended/expired, and an open ssh connection is cut; shortening a TTL with PATCH moves the expiry.
# Usage: sessions_ttl_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
start_daemon

MAX_LAG=1.0

# expect_expiry SID EXPIRES_AT_RFC3339: polls every 50 ms until the container is gone; checks the lag.
expect_expiry() {
  local sid=$1 exp_s gone lag deadline
  exp_s=$(ts "$2") || fail "expires_at '$2' unparsable"
  deadline=$(awk -v a="$exp_s" 'BEGIN{printf "%.3f", a+15}')
  gone=
  while fle "$(now)" "$deadline"; do
    if [ -z "$(docker ps -aq --filter "label=sandman.session=$sid")" ]; then gone=$(now); break; fi
    sleep 0.05
  done
  [ -n "$gone" ] || fail "container of $sid still exists 15 s after expires_at $2"
  lag=$(fsub "$gone" "$exp_s")
  note "container of $sid gone ${lag} s after expires_at"
  fle "$lag" "$MAX_LAG" || fail "container of $sid removed ${lag} s after expires_at (limit ${MAX_LAG} s)"
  fle -0.2 "$lag" || fail "container of $sid removed ${lag} s BEFORE expires_at"
  api GET "/api/v1/sessions/$sid"
  assert_code 200 "GET of expired session $sid"
  assert_eq "$(jb .status)" ended "status of expired session $sid"
  assert_eq "$(jb .end_reason)" expired "end_reason of expired session $sid"
}

mkuser U1 t
mkuser U2 p

note "ttl_seconds 5, with an ssh connection open"
create_session "$U1" '"ttl_seconds":5'
SID1=$SID EXP1=$(jb .expires_at)
exp1_s=$(ts "$EXP1") || fail "expires_at unparsable"
created1_s=$(ts "$(jb .created_at)") || fail "created_at unparsable"
fabs_le "$(fsub "$(fsub "$exp1_s" "$created1_s")" 5)" 0.01 || fail "expires_at - created_at is not 5 s: $BODY"
wait_ssh "$SSH_PORT" "$U1" "$KEY" 4 || fail "cannot ssh into $SID1"
ssh "${SSH_OPTS[@]}" -i "$KEY" -p "$SSH_PORT" "$U1@127.0.0.1" 'echo connected; sleep 60' </dev/null >"$E2E_TMP/ssh1.out" 2>&1 &
SSH_BG=$!
BG_PIDS+=("$SSH_BG")
for i in $(seq 40); do grep -q connected "$E2E_TMP/ssh1.out" && break; sleep 0.05; done
grep -q connected "$E2E_TMP/ssh1.out" || fail "background ssh did not connect: $(cat "$E2E_TMP/ssh1.out")"
fle "$(now)" "$exp1_s" || fail "test too slow: session expired before the ssh connection was open"
expect_expiry "$SID1" "$EXP1"

for i in $(seq 50); do kill -0 "$SSH_BG" 2>/dev/null || break; sleep 0.1; done
kill -0 "$SSH_BG" 2>/dev/null && fail "the open ssh connection to $SID1 survived 5 s past the session's end"
wait "$SSH_BG"
rc=$?
[ "$rc" != 0 ] || fail "the ssh 'sleep 60' exited 0: the connection was not cut"
note "open ssh connection cut (ssh exit $rc)"

note "PATCH shortens a 10 min TTL to 3 s"
create_session "$U2" '"ttl_minutes":10'
SID2=$SID
wait_ssh "$SSH_PORT" "$U2" "$KEY" 15 || fail "cannot ssh into $SID2"
t0=$(now)
api PATCH "/api/v1/sessions/$SID2" '{"ttl_seconds":3}'
assert_code 200 "PATCH {\"ttl_seconds\":3}"
EXP2=$(jb .expires_at)
exp2_s=$(ts "$EXP2") || fail "expires_at unparsable"
fabs_le "$(fsub "$(fsub "$exp2_s" "$t0")" 3)" 1 || fail "PATCH ttl_seconds 3 set expires_at $EXP2, not now+3s"
api GET "/api/v1/sessions/$SID2"
assert_eq "$(jb .status)" running "status right after shortening"
expect_expiry "$SID2" "$EXP2"
exit 0

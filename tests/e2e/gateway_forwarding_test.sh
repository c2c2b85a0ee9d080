#!/usr/bin/env bash
# e2e: agent forwarding (ssh -A) and remote port forwarding (ssh -R) with the real OpenSSH client,
# the running daemon and real session containers, both ways in (the SSH gateway and the direct port).
#   1. default daemon: -A gives no agent in the session, -R with ExitOnForwardFailure=yes fails,
#      an interactive gateway shell shows both refusal lines naming the flag;
#   2. daemon with --allow-agent-forwarding --allow-remote-forwarding, a new session: `ssh-add -l` in
#      the session lists the key of a throwaway local ssh-agent; -R 0 (port reported to the client)
#      and a fixed -R port reach a python3 http server on this host's 127.0.0.1; no refusal lines;
#      a session created before the flags were set reports -R as failed in the session.
# Usage: gateway_forwarding_test.sh <path-to-sandman>
# shellcheck disable=SC2016  # remote commands are single-quoted on purpose: they expand in the session
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
for t in ssh-agent ssh-add "$PY"; do
  command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed"
done
T=$E2E_TMP

# sshp PORT USER KEY [ssh options...] -- [cmd...]: ssh to PORT (the gateway's or a direct one), with
# options before the host. AGENT=1: ForwardAgent with the local test agent. (The ssh client forwards
# only the agent of its SSH_AUTH_SOCK, which SSH_OPTS' IdentityAgent=none clears, and the first
# value of an option wins: so the agent variant replaces it. IdentitiesOnly keeps the agent's key
# out of authentication.)
sshp() {
  local p=$1 u=$2 k=$3 opts=() base=("${SSH_OPTS[@]}")
  shift 3
  if [ "${AGENT:-0}" = 1 ]; then base=("${SSH_OPTS[@]/#IdentityAgent=none/IdentityAgent=$AGENT_SOCK}" -o ForwardAgent=yes); fi
  while [ $# -gt 0 ] && [ "$1" != -- ]; do opts+=("$1"); shift; done
  [ "${1:-}" = -- ] && shift
  timeout 60 ssh "${base[@]}" -i "$k" -p "$p" "${opts[@]}" "$u@127.0.0.1" "$@"
}

# ------------------------------------------------------------------ local agent and http server
note "a throwaway ssh-agent with one key, and a python3 http server on 127.0.0.1"
eval "$(ssh-agent -s)" >/dev/null || fail "ssh-agent"
BG_PIDS+=("$SSH_AGENT_PID")
AGENT_SOCK=$SSH_AUTH_SOCK
unset SSH_AUTH_SOCK  # only the ssh clients below that forward it get it (ForwardAgent=<socket>)
ssh-keygen -q -t ed25519 -N '' -C "e2e-fwd-$RUN" -f "$T/agentkey" || fail "ssh-keygen"
SSH_AUTH_SOCK=$AGENT_SOCK ssh-add -q "$T/agentkey" 2>/dev/null || fail "ssh-add"
FP=$(ssh-keygen -lf "$T/agentkey.pub" | awk '{print $2}')
assert_match "$FP" '^SHA256:' "fingerprint of the agent key"

mkdir -p "$T/www"
WEB_TOKEN="fwd-ok-$RUN"
echo "$WEB_TOKEN" >"$T/www/token.txt"
HPORT=$(free_port) || fail "no free port for the http server"
"$PY" -m http.server --bind 127.0.0.1 --directory "$T/www" "$HPORT" >"$T/http.log" 2>&1 &
HPID=$!
BG_PIDS+=("$HPID")
for _ in $(seq 50); do port_open "$HPORT" && break; sleep 0.1; done
port_open "$HPORT" || fail "the http server did not start on 127.0.0.1:$HPORT"

# ------------------------------------------------------------------ 1. flags off (the default)
start_daemon --ttl-max 120
mkuser UA a
create_session "$UA" '"ttl_minutes":10'
SID_A=$SID KEY_A=$KEY PORT_A=$SSH_PORT
wait_gw "$UA" "$KEY_A" 20 || fail "no gateway login for $UA within 20 s"

note "flags off: -A gives no agent in the session (gateway and direct port)"
AGENT=1 sshp "$GW_PORT" "$UA" "$KEY_A" -- 'ssh-add -l' </dev/null >"$T/a0.out" 2>"$T/a0.err"
assert_eq "$?" 2 "ssh-add -l through the gateway without --allow-agent-forwarding ($(<"$T/a0.out"))"
assert_contains "$(<"$T/a0.err")" "Could not open a connection to your authentication agent" "ssh-add -l, gateway, flag off"
AGENT=1 sshp "$PORT_A" "$UA" "$KEY_A" -- 'ssh-add -l' </dev/null >"$T/a0d.out" 2>"$T/a0d.err"
assert_eq "$?" 2 "ssh-add -l over the direct port without --allow-agent-forwarding ($(<"$T/a0d.out"))"
assert_contains "$(<"$T/a0d.err")" "Could not open a connection to your authentication agent" "ssh-add -l, direct, flag off"

note "flags off: -R with ExitOnForwardFailure=yes fails (gateway and direct port)"
sshg "$UA" "$KEY_A" -o ExitOnForwardFailure=yes -R "0:127.0.0.1:$HPORT" 'echo ran' </dev/null >"$T/r0.out" 2>"$T/r0.err"
rc=$?
assert_ne "$rc" 0 "-R 0 through the gateway without --allow-remote-forwarding"
assert_eq "$(<"$T/r0.out")" "" "stdout of a refused -R (the command must not run)"
sshp "$PORT_A" "$UA" "$KEY_A" -o ExitOnForwardFailure=yes -R "18080:127.0.0.1:$HPORT" -- 'echo ran' \
  </dev/null >"$T/r0d.out" 2>"$T/r0d.err"
assert_ne "$?" 0 "-R over the direct port without --allow-remote-forwarding"
assert_eq "$(<"$T/r0d.out")" "" "stdout of a refused direct -R"

note "flags off: an interactive gateway shell names the flags"
AGENT=1 sshp "$GW_PORT" "$UA" "$KEY_A" -tt -R "0:127.0.0.1:$HPORT" <<<'exit 0' >/dev/null 2>"$T/i0.err"
assert_eq "$?" 0 "interactive shell with -A -R, flags off"
err=$(tr -d '\r' <"$T/i0.err")
assert_contains "$err" "sandman: agent forwarding (-A) is not available through this gateway; ask your admin to enable --allow-agent-forwarding" "agent refusal line"
assert_contains "$err" "sandman: remote port forwarding (-R) is not available through this gateway; ask your admin to enable --allow-remote-forwarding" "-R refusal line"

# ------------------------------------------------------------------ 2. flags on
note "restart with --allow-agent-forwarding --allow-remote-forwarding; a new session"
stop_daemon
start_daemon --ttl-max 120 --allow-agent-forwarding --allow-remote-forwarding
mkuser UB b
create_session "$UB" '"ttl_minutes":10'
KEY_B=$KEY PORT_B=$SSH_PORT
wait_gw "$UB" "$KEY_B" 20 || fail "no gateway login for $UB within 20 s"
wait_gw "$UA" "$KEY_A" 20 || fail "no gateway login for $UA after the restart"

note "flags on: ssh -A, 'ssh-add -l' in the session lists the local agent's key (gateway and direct port)"
out=$(AGENT=1 sshp "$GW_PORT" "$UB" "$KEY_B" -- 'ssh-add -l' </dev/null 2>"$T/a1.err")
assert_eq "$?" 0 "ssh-add -l through the gateway (stderr: $(<"$T/a1.err"))"
assert_contains "$out" "$FP" "ssh-add -l through the gateway"
out=$(AGENT=1 sshp "$PORT_B" "$UB" "$KEY_B" -- 'ssh-add -l' </dev/null 2>"$T/a1d.err")
assert_eq "$?" 0 "ssh-add -l over the direct port (stderr: $(<"$T/a1d.err"))"
assert_contains "$out" "$FP" "ssh-add -l over the direct port"
# a signature made in the session by the local agent (only the public key is there), checked here
AGENT=1 sshp "$GW_PORT" "$UB" "$KEY_B" -- \
  "cat > /workspace/agentkey.pub && echo signed-$RUN > /workspace/msg && ssh-keygen -q -Y sign -n file -f /workspace/agentkey.pub /workspace/msg && cat /workspace/msg.sig" \
  <"$T/agentkey.pub" >"$T/msg.sig" 2>"$T/sign.err" || fail "ssh-keygen -Y sign with the forwarded agent: $(<"$T/sign.err")"
echo "signed-$RUN" >"$T/msg"
ssh-keygen -q -Y check-novalidate -n file -f "$T/agentkey.pub" -s "$T/msg.sig" <"$T/msg" >/dev/null 2>&1 ||
  fail "the signature made through the forwarded agent does not verify"

note "flags on: -R 0 through the gateway (port reported to the client) reaches the local http server"
ssh "${SSH_OPTS[@]}" -v -N -o ExitOnForwardFailure=yes -i "$KEY_B" -p "$GW_PORT" -R "0:127.0.0.1:$HPORT" \
  "$UB@127.0.0.1" </dev/null >/dev/null 2>"$T/rz.err" &
RZPID=$!
BG_PIDS+=("$RZPID")
RPORT=
for _ in $(seq 100); do
  RPORT=$(sed -n 's/.*Allocated port \([0-9]*\) for remote forward.*/\1/p' "$T/rz.err" | head -1)
  [ -n "$RPORT" ] && break
  kill -0 "$RZPID" 2>/dev/null || fail "ssh -R 0 exited: $(grep -v '^debug' "$T/rz.err" | tail -5)"
  sleep 0.1
done
[ -n "$RPORT" ] || fail "no 'Allocated port' from ssh -R 0 within 10 s"
out=$(sshg "$UB" "$KEY_B" "curl -fsS --max-time 10 http://127.0.0.1:$RPORT/token.txt" </dev/null 2>"$T/rz.curl")
assert_eq "$out" "$WEB_TOKEN" "curl in the session to the -R 0 port $RPORT (stderr: $(<"$T/rz.curl"))"
kill "$RZPID" 2>/dev/null
wait "$RZPID" 2>/dev/null

note "flags on: a fixed -R port through the gateway (curl and bash /dev/tcp) and over the direct port"
out=$(sshg "$UB" "$KEY_B" -o ExitOnForwardFailure=yes -R "18080:127.0.0.1:$HPORT" \
  'curl -fsS --max-time 10 http://127.0.0.1:18080/token.txt' </dev/null 2>"$T/rf.err")
assert_eq "$out" "$WEB_TOKEN" "curl in the session to -R 18080 through the gateway (stderr: $(<"$T/rf.err"))"
# (a new port each time: the sshd of the previous login may still hold its listener for a moment,
# and through the gateway a -R refused in the session is only a notice, see the README)
out=$(sshg "$UB" "$KEY_B" -o ExitOnForwardFailure=yes -R "18084:127.0.0.1:$HPORT" \
  'exec 3<>/dev/tcp/127.0.0.1/18084 && printf "GET /token.txt HTTP/1.0\r\n\r\n" >&3 && timeout 10 cat <&3' \
  </dev/null 2>"$T/rt.err")
assert_contains "$out" "$WEB_TOKEN" "bash /dev/tcp in the session to -R 18084 through the gateway (stderr: $(<"$T/rt.err"))"
out=$(sshp "$PORT_B" "$UB" "$KEY_B" -o ExitOnForwardFailure=yes -R "18081:127.0.0.1:$HPORT" -- \
  'exec 3<>/dev/tcp/127.0.0.1/18081 && printf "GET /token.txt HTTP/1.0\r\n\r\n" >&3 && timeout 10 cat <&3' \
  </dev/null 2>"$T/rd.err")
assert_contains "$out" "$WEB_TOKEN" "bash /dev/tcp in the session to -R 18081 over the direct port (stderr: $(<"$T/rd.err"))"
# a bigger answer (4 MB) through the channels the gateway opens to the client
head -c 4194304 /dev/urandom >"$T/www/big.bin"
want=$(sha256sum <"$T/www/big.bin" | awk '{print $1}')
got=$(sshg "$UB" "$KEY_B" -o ExitOnForwardFailure=yes -R "18082:127.0.0.1:$HPORT" \
  'curl -fsS --max-time 30 http://127.0.0.1:18082/big.bin | sha256sum' </dev/null 2>"$T/rb.err" | awk '{print $1}')
assert_eq "$got" "$want" "sha256 of 4 MB fetched in the session through -R (stderr: $(<"$T/rb.err"))"

note "flags on: an interactive shell shows no refusal line"
AGENT=1 sshp "$GW_PORT" "$UB" "$KEY_B" -tt -R "0:127.0.0.1:$HPORT" <<<'exit 0' >/dev/null 2>"$T/i1.err"
assert_eq "$?" 0 "interactive shell with -A -R, flags on"
assert_not_contains "$(<"$T/i1.err")" "not available through this gateway" "interactive shell, flags on"
assert_contains "$(<"$T/i1.err")" "sandman: session " "banner"

note "flags on, a session created before them: -R is reported as failed in the session"
sshg "$UA" "$KEY_A" -tt -R "18083:127.0.0.1:$HPORT" <<<'sleep 2; exit 0' >/dev/null 2>"$T/old.err"
assert_contains "$(tr -d '\r' <"$T/old.err")" "sandman: remote port forwarding (-R) of port 18083 failed in the session" \
  "-R into session $SID_A (created without --allow-remote-forwarding)"

curl -fsS -o /dev/null --max-time 5 "$API/healthz" || fail "/healthz at the end"
exit 0

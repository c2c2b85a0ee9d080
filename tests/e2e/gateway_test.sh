#!/usr/bin/env bash
# e2e: the built-in SSH gateway (`ssh <user>@127.0.0.1 -p $GW_PORT`) with the real OpenSSH client against
# the running daemon and real session containers: host key kept across a restart, no-session message,
# interactive pty shell (banner, exit status), env/keepalive/exit-signal relay, -R refused with a
# message, no agent forwarding, window change, exec with 8 MB stdout and separate stderr, scp both ways,
# sftp and a 'cat > file' upload (64 MB, checksums, each within E2E_GW_XFER_MAX s), rsync, ssh -L,
# wrong key, registered user keys, a session deleted under an open connection (closed with the reason
# within 2 s; other users unaffected), pre-auth garbage and stalled handshakes, a brute-force burst,
# and the connection records.
# Usage: gateway_test.sh <path-to-sandman>
#
# Pre-auth limits are per source address (10 failures block an address for 5 minutes), so every
# test that fails on purpose in bulk connects from its own loopback address (127.0.0.2-4); the
# logins that must keep working come from 127.0.0.1, which collects only a few failures here.
# shellcheck disable=SC2016  # remote commands are single-quoted on purpose: they expand in the session
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
for t in sftp rsync ssh-keyscan python3 cmp; do
  command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed (rsync: apt-get install rsync)"
done
start_daemon --ttl-max 120

T=$E2E_TMP
HOSTKEY_FILE=$E2E_TMP/state/gateway_host_ed25519_key

# keyscan: the gateway's ed25519 host key as "type base64"
keyscan() { ssh-keyscan -T 5 -t ed25519 -p "$GW_PORT" 127.0.0.1 2>/dev/null | awk '$2 == "ssh-ed25519" {print $2, $3; exit}'; }

# remote_sha USER KEY PATH: sha256 of a file in the session, computed there (through the gateway).
remote_sha() { sshg "$1" "$2" "sha256sum < '$3'" </dev/null | awk '{print $1}'; }
local_sha() { sha256sum <"$1" | awk '{print $1}'; }

# ------------------------------------------------------------------ host key, no-session user
note "gateway host key: generated once (0600), the same after a daemon restart"
[ -f "$HOSTKEY_FILE" ] || fail "no gateway host key at $HOSTKEY_FILE"
assert_eq "$(stat -c %a "$HOSTKEY_FILE")" 600 "mode of the gateway host key"
HK1=$(keyscan)
assert_match "$HK1" '^ssh-ed25519 [A-Za-z0-9+/=]+$' "ssh-keyscan of the gateway"
echo "[127.0.0.1]:$GW_PORT $HK1" >"$T/known_hosts"
stop_daemon
restart_daemon
HK2=$(keyscan)
assert_eq "$HK2" "$HK1" "gateway host key after a restart"

mkuser UN n
note "user without a session ($UN): one-line message, status 1, no host-key warning (strict known_hosts)"
ssh-keygen -q -t ed25519 -N '' -C "e2e-any-$RUN" -f "$T/anykey" || fail "ssh-keygen"
t0=$(now)
timeout 20 ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$T/known_hosts" \
  -o LogLevel=ERROR -o ConnectTimeout=5 -o IdentitiesOnly=yes -o IdentityAgent=none -i "$T/anykey" \
  -p "$GW_PORT" "$UN@127.0.0.1" true </dev/null >"$T/ns.out" 2>"$T/ns.err"
rc=$?
dt=$(fsub "$(now)" "$t0")
[ "$rc" != 124 ] || fail "no-session login hung (timeout 20 s)"
assert_eq "$rc" 1 "exit status of a login for a user without a session (stderr: $(<"$T/ns.err"))"
assert_eq "$(wc -l <"$T/ns.err" | tr -d ' ')" 1 "lines on stderr for a user without a session ($(<"$T/ns.err"))"
assert_contains "$(<"$T/ns.err")" "sandman: no active session for $UN;" "no-session message"
[ -s "$T/ns.out" ] && fail "no-session login wrote to stdout: $(<"$T/ns.out")"
fle "$dt" 5 || fail "no-session login took $dt s"

# ------------------------------------------------------------------ sessions
mkuser UA a
mkuser UB b
note "sessions for $UA and $UB"
create_session "$UA" '"ttl_minutes":10'
SID_A=$SID KEY_A=$KEY PORT_A=$SSH_PORT
create_session "$UB" '"ttl_minutes":10'
SID_B=$SID KEY_B=$KEY
wait_gw "$UA" "$KEY_A" 20 || fail "no gateway login for $UA within 20 s"
wait_gw "$UB" "$KEY_B" 20 || fail "no gateway login for $UB within 20 s"
assert_eq "$(sshg "$UA" "$KEY_A" 'id -un' </dev/null)" "$UA" "gateway routes $UA to $UA's session"
assert_eq "$(sshg "$UB" "$KEY_B" 'echo $SANDMAN_SESSION_ID' </dev/null)" "$SID_B" "gateway routes $UB to $SID_B"
# the key of one user's session does not open another user's
sshg "$UB" "$KEY_A" true </dev/null >/dev/null 2>&1
assert_eq "$?" 255 "$UB with $UA's session key"

# ------------------------------------------------------------------ interactive shell
note "interactive shell through a pty: banner, commands, exit status 5"
sshg "$UA" "$KEY_A" -tt <<<$'echo pty-$((6*7))-ok\ntty\nexit 5' >"$T/pty.out" 2>"$T/pty.err"
rc=$?
assert_eq "$rc" 5 "exit status of an interactive shell ending with 'exit 5'"
assert_contains "$(<"$T/pty.out")" "pty-42-ok" "output of the interactive shell"
assert_match "$(<"$T/pty.out")" '/dev/pts/[0-9]+' "tty in the interactive shell"
assert_contains "$(<"$T/pty.err")" "sandman: session $SID_A" "login banner"
banner_lines=$(grep -c 'sandman: session' "$T/pty.err")
assert_eq "$banner_lines" 1 "banner lines ($(<"$T/pty.err"))"
assert_match "$(tr -d '\r' <"$T/pty.err")" "sandman: session $SID_A, GPU [^,]+, [0-9]+ min left" "banner format"

# ------------------------------------------------------------------ other relayed requests
note "env, keepalives, exit signal, -R refused with a message, no agent forwarding"
assert_eq "$(sshg "$UA" "$KEY_A" -o SetEnv="LC_E2E=v$RUN" 'echo "[$LC_E2E]"' </dev/null)" "[v$RUN]" "env request (SetEnv LC_*)"
# the client gives up after 2 unanswered keepalives (2 s): the gateway must answer them
assert_eq "$(sshg "$UA" "$KEY_A" -o ServerAliveInterval=1 -o ServerAliveCountMax=2 'sleep 4; echo kept' </dev/null 2>&1)" \
  kept "a 4 s exec with 1 s client keepalives"
sshc "$PORT_A" "$UA" "$KEY_A" 'kill -TERM $$' >/dev/null 2>&1
direct_rc=$?
sshg "$UA" "$KEY_A" 'kill -TERM $$' </dev/null >/dev/null 2>&1
assert_eq "$?" "$direct_rc" "exit status of a command killed by SIGTERM (gateway vs direct)"
sshg "$UA" "$KEY_A" -tt -R 0:127.0.0.1:9 <<<'exit 0' >/dev/null 2>"$T/r.err"
assert_contains "$(<"$T/r.err")" "sandman: remote port forwarding (-R) is not available" "-R refused with a message"
# Agent forwarding, on and off: gateway_forwarding_test.sh (it replaces IdentityAgent=none,
# which otherwise keeps the client from asking at all).

# ------------------------------------------------------------------ window change
note "pty size and window change (python pty: 30x100, then resized to 40x120)"
cat >"$T/winch.py" <<'EOF'
import fcntl, os, pty, select, signal, struct, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    os.execvp(sys.argv[1], sys.argv[1:])
buf = b""
def until(pat, secs):
    global buf
    end = time.time() + secs
    while pat not in buf:
        left = end - time.time()
        if left <= 0:
            return False
        r, _, _ = select.select([fd], [], [], min(left, 0.2))
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return False
            if not d:
                return False
            buf += d
    return True
first = until(b"30 100", 15)
second = False
if first:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # SIGWINCH to ssh
    end = time.time() + 10
    while time.time() < end and not second:
        os.write(fd, b"x\r")
        second = until(b"40 120", 0.5)
try:
    os.write(fd, b"\x04")
except OSError:
    pass
for _ in range(50):
    if os.waitpid(pid, os.WNOHANG)[0]:
        break
    time.sleep(0.1)
else:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("first=%s second=%s" % (first, second))
sys.stderr.write(buf.decode(errors="replace")[-600:] + "\n")
EOF
winch=$(timeout 40 python3 "$T/winch.py" ssh "${SSH_OPTS[@]}" -tt -i "$KEY_A" -p "$GW_PORT" "$UA@127.0.0.1" \
  'stty size; while read x; do stty size; done' 2>"$T/winch.err")
assert_eq "$winch" "first=True second=True" "pty size 30x100 then window change to 40x120 (pty said: $(tr -d '\r' <"$T/winch.err" | tail -c 300))"

# ------------------------------------------------------------------ exec: big stdout, separate stderr
note "exec: 8 MB of stdout with stderr kept apart, exit status 3"
sshg "$UA" "$KEY_A" 'head -c 8388608 /dev/urandom >/workspace/big8' </dev/null || fail "making the 8 MB file"
want=$(remote_sha "$UA" "$KEY_A" /workspace/big8)
assert_match "$want" '^[0-9a-f]{64}$' "remote sha256 of big8"
sshg "$UA" "$KEY_A" 'printf "first err\n" >&2; cat /workspace/big8; printf "second err\tline\n" >&2; exit 3' \
  </dev/null >"$T/big8.out" 2>"$T/big8.err"
rc=$?
assert_eq "$rc" 3 "exit status of the exec"
assert_eq "$(stat -c %s "$T/big8.out")" 8388608 "stdout size of the exec"
assert_eq "$(local_sha "$T/big8.out")" "$want" "sha256 of the exec's stdout"
printf 'first err\nsecond err\tline\n' >"$T/big8.want"
cmp -s "$T/big8.err" "$T/big8.want" || fail "stderr of the exec not exactly as sent: $(od -c "$T/big8.err" | head -5)"
# stdin into an exec, stdout back (both directions at once)
head -c 3000000 /dev/urandom >"$T/in3"
sshg "$UA" "$KEY_A" cat <"$T/in3" >"$T/in3.back" || fail "cat through the gateway"
cmp -s "$T/in3" "$T/in3.back" || fail "3 MB through 'cat' came back changed"

# ------------------------------------------------------------------ scp / sftp 64 MB
note "scp up (sftp protocol), scp down (legacy scp protocol), sftp get: 64 MB, checksums"
# Each transfer takes well under 5 s here; XFER_MAX catches a relay that stalls (waits for an
# unrelated packet, e.g. the session sshd's 30 s keepalive, to move again) instead of only
# being slow.
XFER_MAX=${E2E_GW_XFER_MAX:-25}
timed() { # WHAT CMD...: runs CMD (bounded by 120 s); fails when it fails or takes over XFER_MAX s
  local what=$1 t0 dt
  shift
  t0=$(now)
  timeout 120 "$@" || fail "$what through the gateway (status $?)"
  dt=$(fsub "$(now)" "$t0")
  fle "$dt" "$XFER_MAX" || fail "$what through the gateway took $dt s (> $XFER_MAX s: the relay stalled)"
  note "  $what: $dt s"
}
head -c 67108864 /dev/urandom >"$T/f64" || fail "making the 64 MB file"
sum64=$(local_sha "$T/f64")
timed "scp up" scp -q "${SSH_OPTS[@]}" -i "$KEY_A" -P "$GW_PORT" "$T/f64" "$UA@127.0.0.1:/workspace/f64"
assert_eq "$(remote_sha "$UA" "$KEY_A" /workspace/f64)" "$sum64" "sha256 in the session after scp up"
timed "scp -O down" scp -q -O "${SSH_OPTS[@]}" -i "$KEY_A" -P "$GW_PORT" "$UA@127.0.0.1:/workspace/f64" "$T/f64.scp"
assert_eq "$(local_sha "$T/f64.scp")" "$sum64" "sha256 after scp -O down"
printf 'get /workspace/f64 %s\n' "$T/f64.sftp" >"$T/sftp.batch"
timed "sftp get" sftp -q -b "$T/sftp.batch" "${SSH_OPTS[@]}" -i "$KEY_A" -P "$GW_PORT" "$UA@127.0.0.1"
assert_eq "$(local_sha "$T/f64.sftp")" "$sum64" "sha256 after sftp get"
# an upload as a plain exec, too (the direction a stalled relay has been seen to hang in)
timed "64 MB into 'cat > file'" sh -c 'ssh "$@" "cat > /workspace/f64.cat" <"$0"' "$T/f64" \
  "${SSH_OPTS[@]}" -i "$KEY_A" -p "$GW_PORT" "$UA@127.0.0.1"
assert_eq "$(remote_sha "$UA" "$KEY_A" /workspace/f64.cat)" "$sum64" "sha256 after 64 MB into 'cat > file'"
rm -f "$T/f64.scp" "$T/f64.sftp"

# ------------------------------------------------------------------ rsync
note "rsync -e ssh: a small tree into /workspace and back"
mkdir -p "$T/tree/a/b" "$T/tree/c" "$T/tree/empty"
for i in $(seq 20); do head -c $((i * 997)) /dev/urandom >"$T/tree/a/f$i"; done
printf 'hello %s\n' "$RUN" >"$T/tree/a/b/deep.txt"
printf '#!/bin/sh\necho x\n' >"$T/tree/c/run.sh"
chmod 755 "$T/tree/c/run.sh"
ln -s ../a/b/deep.txt "$T/tree/c/link"
RSH="ssh ${SSH_OPTS[*]} -i $KEY_A -p $GW_PORT"
timeout 60 rsync -a -e "$RSH" "$T/tree/" "$UA@127.0.0.1:/workspace/rtree/" || fail "rsync up through the gateway"
assert_eq "$(sshg "$UA" "$KEY_A" 'cat /workspace/rtree/c/link; /workspace/rtree/c/run.sh' </dev/null)" \
  "hello $RUN"$'\n'"x" "files rsynced into the session"
timeout 60 rsync -a -e "$RSH" "$UA@127.0.0.1:/workspace/rtree/" "$T/tree.back/" || fail "rsync down through the gateway"
diff -r --no-dereference "$T/tree" "$T/tree.back" >"$T/rsync.diff" 2>&1 || fail "rsync round trip differs: $(head -5 "$T/rsync.diff")"
if [ ! -L "$T/tree.back/c/link" ] || [ ! -x "$T/tree.back/c/run.sh" ] || [ ! -d "$T/tree.back/empty" ]; then
  fail "rsync round trip lost a symlink, a mode or an empty directory"
fi

# ------------------------------------------------------------------ ssh -L
note "ssh -L to a port inside the container (python3 http.server on 127.0.0.1:8099)"
SSHG_TIMEOUT=20 sshg "$UA" "$KEY_A" "set -e; mkdir -p /workspace/www; echo 'forwarded $RUN' >/workspace/www/probe.txt
  head -c 1048576 /dev/urandom >/workspace/www/blob; cd /workspace/www
  nohup python3 -m http.server 8099 --bind 127.0.0.1 >/dev/null 2>&1 </dev/null &" </dev/null ||
  fail "starting http.server in the session"
blob_sum=$(remote_sha "$UA" "$KEY_A" /workspace/www/blob)
LP=$(free_port) || fail "no free local port"
ssh "${SSH_OPTS[@]}" -p "$GW_PORT" -i "$KEY_A" -N -o ExitOnForwardFailure=yes -L "$LP:127.0.0.1:8099" "$UA@127.0.0.1" \
  </dev/null 2>"$T/fwd.err" &
FPID=$!
BG_PIDS+=("$FPID")
got=
for _ in $(seq 50); do
  got=$(curl -fsS --max-time 2 "http://127.0.0.1:$LP/probe.txt" 2>/dev/null) && break
  kill -0 "$FPID" 2>/dev/null || fail "ssh -L through the gateway exited: $(<"$T/fwd.err")"
  sleep 0.2
done
assert_eq "$got" "forwarded $RUN" "a file fetched through ssh -L"
curl -fsS --max-time 20 -o "$T/blob.fwd" "http://127.0.0.1:$LP/blob" || fail "1 MB through ssh -L"
assert_eq "$(local_sha "$T/blob.fwd")" "$blob_sum" "sha256 of 1 MB through ssh -L"
kill "$FPID" 2>/dev/null
wait "$FPID" 2>/dev/null

# ------------------------------------------------------------------ keys
note "wrong key refused with 255"
ssh-keygen -q -t ed25519 -N '' -C "e2e-wrong-$RUN" -f "$T/wrongkey" || fail "ssh-keygen"
sshg "$UA" "$T/wrongkey" true </dev/null >/dev/null 2>"$T/wrong.err"
rc=$?
assert_eq "$rc" 255 "exit status with a wrong key"
assert_contains "$(<"$T/wrong.err")" "Permission denied" "wrong key message"

note "a key registered with PUT /users/$UA/keys logs in; refused after DELETE"
ssh-keygen -q -t ed25519 -N '' -C "e2e-reg-$RUN" -f "$T/regkey" || fail "ssh-keygen"
api PUT "/api/v1/users/$UA/keys" "$(jq -n --arg k "$(<"$T/regkey.pub")" '{public_key: $k}')"
assert_code 200 "PUT /users/$UA/keys"
KID=$(jb .id)
assert_match "$KID" '^[0-9]+$' "key id"
api GET "/api/v1/users/$UA/keys"
assert_code 200 "GET /users/$UA/keys"
assert_json "any(.[]; .id == $KID)" "registered key listed"
assert_eq "$(sshg "$UA" "$T/regkey" 'id -un' </dev/null)" "$UA" "login with the registered key"
api DELETE "/api/v1/users/$UA/keys/$KID"
assert_code 200 "DELETE /users/$UA/keys/$KID"
sshg "$UA" "$T/regkey" true </dev/null >/dev/null 2>&1
assert_eq "$?" 255 "exit status with a deleted registered key"

# ------------------------------------------------------------------ connection records
note "GET /sessions/$SID_A/connections: logins with bytes each way, outcome, duration"
for _ in $(seq 30); do  # the gateway notices a client's close within a sweep (~250 ms)
  api GET "/api/v1/sessions/$SID_A/connections"
  jq -e 'all(.[]; .ended_at != null)' <<<"$BODY" >/dev/null 2>&1 && break
  sleep 0.1
done
assert_code 200 "GET connections"
assert_json 'length >= 10' "number of connection records of $SID_A"
assert_json "all(.[]; .session_id == \"$SID_A\" and .user_id == \"$UA\" and (.source | startswith(\"127.0.0.1:\")))" \
  "who/where/which session of every record"
assert_json 'all(.[]; .ended_at != null and .outcome == "closed" and (.duration_seconds | type == "number" and . >= 0))' \
  "ended records have outcome closed and a duration"
assert_json 'any(.[]; .bytes_in >= 67108864 and .bytes_out > 0 and .duration_seconds > 0)' "the scp up record (bytes_in >= 64 MB)"
assert_json 'any(.[]; .bytes_out >= 67108864 and .bytes_in > 0)' "an scp/sftp down record (bytes_out >= 64 MB)"
assert_json 'any(.[]; .bytes_out >= 8388608 and .bytes_out < 67108864)' "the 8 MB exec record"

# ------------------------------------------------------------------ delete under an open connection
note "DELETE $SID_A under an open gateway connection; $UB's connection keeps going"
ssh "${SSH_OPTS[@]}" -p "$GW_PORT" -i "$KEY_A" "$UA@127.0.0.1" 'echo ready; sleep 60' </dev/null >"$T/del.out" 2>"$T/del.err" &
APID=$!
BG_PIDS+=("$APID")
ssh "${SSH_OPTS[@]}" -p "$GW_PORT" -i "$KEY_B" "$UB@127.0.0.1" 'i=0; while [ $i -lt 30 ]; do echo tick$i; i=$((i+1)); sleep 0.1; done' \
  </dev/null >"$T/b.out" 2>"$T/b.err" &
BPID=$!
BG_PIDS+=("$BPID")
for _ in $(seq 100); do grep -q ready "$T/del.out" && grep -q tick0 "$T/b.out" && break; sleep 0.05; done
grep -q ready "$T/del.out" || fail "$UA's 'sleep 60' connection never started: $(<"$T/del.err")"
grep -q tick0 "$T/b.out" || fail "$UB's connection never started: $(<"$T/b.err")"
t0=$(now)
api DELETE "/api/v1/sessions/$SID_A"
assert_code 200 "DELETE /sessions/$SID_A"
closed_in=
for _ in $(seq 100); do
  if ! kill -0 "$APID" 2>/dev/null; then closed_in=$(fsub "$(now)" "$t0"); break; fi
  sleep 0.05
done
[ -n "$closed_in" ] || fail "$UA's gateway connection still open 5 s after DELETE"
wait "$APID"
rc=$?
note "  closed ${closed_in} s after DELETE (status $rc): $(tr '\n' ' ' <"$T/del.err")"
fle "$closed_in" 2 || fail "$UA's connection took $closed_in s to close after DELETE (want <= 2 s)"
assert_ne "$rc" 0 "exit status of the connection whose session was deleted"
assert_contains "$(<"$T/del.err")" "sandman: connection closed:" "reason on stderr"
assert_match "$(<"$T/del.err")" "sandman: connection closed: [^"$'\n'"]*deleted" "the reason says the session was deleted"
wait "$BPID"
assert_eq "$?" 0 "exit status of $UB's concurrent connection"
assert_eq "$(grep -c '^tick' "$T/b.out")" 30 "ticks $UB's connection got while $SID_A was deleted"
assert_eq "$(sshg "$UB" "$KEY_B" 'echo still-$((1+1))' </dev/null)" still-2 "$UB logs in after $SID_A was deleted"
# the deleted session's user now gets the no-session message
sshg "$UA" "$KEY_A" true </dev/null >/dev/null 2>"$T/a2.err"
assert_eq "$?" 1 "$UA after the session was deleted"
assert_contains "$(<"$T/a2.err")" "no active session for $UA" "$UA after the session was deleted"
for _ in $(seq 40); do
  api GET "/api/v1/sessions/$SID_A/connections"
  jq -e 'all(.[]; .ended_at != null)' <<<"$BODY" >/dev/null 2>&1 && break
  sleep 0.1
done
assert_json 'all(.[]; .ended_at != null)' "every record of the deleted session is closed"

# ------------------------------------------------------------------ pre-auth garbage
note "pre-auth garbage and truncated banners (from 127.0.0.3), stalled handshakes (127.0.0.4)"
cat >"$T/garbage.py" <<'EOF'
import os, socket, sys, time
port = int(sys.argv[1])
def conn(src):
    s = socket.socket()
    s.settimeout(3)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s
def drain(s, secs=2.0):
    end = time.time() + secs
    try:
        while time.time() < end:
            if not s.recv(65536):
                return
    except OSError:
        return
def banner_then(payload):
    return b"SSH-2.0-OpenSSH_9.2p1 e2e\r\n" + payload
cases = [os.urandom(65536) for _ in range(4)]
cases += [b"SSH-2.0-Open", b"SSH-", b"\r\n\r\n", b"SSH-1.5-ancient\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
          b"S" * 300000, b"SSH-2.0-" + b"v" * 70000 + b"\r\n",
          banner_then(b"\x00\x00\x10\x00\x04\x14"),               # a KEXINIT packet cut short
          banner_then(b"\xff\xff\xff\xf0" + os.urandom(64)),      # absurd packet length
          banner_then(b"\x00\x00\x00\x0c\x0a\x14" + b"\x00" * 10), # a tiny malformed KEXINIT
          banner_then(os.urandom(40000))]
for i, payload in enumerate(cases):
    s = conn("127.0.0.3")
    try:
        s.sendall(payload)
        if i % 2:
            s.shutdown(socket.SHUT_WR)
            drain(s, 1.0)
    except OSError:
        pass
    s.close()
print("sent %d" % len(cases))
EOF
timeout 60 python3 "$T/garbage.py" "$GW_PORT" >"$T/garbage.out" 2>&1 || fail "garbage sender failed: $(<"$T/garbage.out")"
kill -0 "$DPID" 2>/dev/null || fail "daemon died from pre-auth garbage"
# garbage is not an auth failure and its closed connections give their pre-auth slots back:
# the same address logs in normally right after
got=
for _ in $(seq 15); do
  got=$(timeout 15 ssh "${SSH_OPTS[@]}" -b 127.0.0.3 -i "$KEY_B" -p "$GW_PORT" "$UB@127.0.0.1" 'echo clean' </dev/null 2>/dev/null) && break
  sleep 0.2
done
assert_eq "$got" clean "$UB from 127.0.0.3 right after the garbage from there"
# six connections stuck mid-handshake, held open while others log in
python3 - "$GW_PORT" >/dev/null 2>&1 <<'EOF' &
import socket, sys, time
socks = []
for i in range(6):
    s = socket.socket(); s.bind(("127.0.0.4", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"SSH-2.0-OpenSSH_9.2p1 stall\r\n" if i % 2 else b"SSH-2.")
    socks.append(s)
time.sleep(60)
EOF
STALL=$!
BG_PIDS+=("$STALL")
sleep 0.5
t0=$(now)
assert_eq "$(SSHG_TIMEOUT=15 sshg "$UB" "$KEY_B" 'echo alive' </dev/null)" alive "$UB through the gateway with stalled handshakes open"
dt=$(fsub "$(now)" "$t0")
fle "$dt" 3 || fail "$UB's login took $dt s while handshakes were stalled"
kill "$STALL" 2>/dev/null
wait "$STALL" 2>/dev/null

# ------------------------------------------------------------------ brute force
mkuser UD d
note "brute force: 20 quick wrong-key logins as $UD (has a registered key) from 127.0.0.2"
ssh-keygen -q -t ed25519 -N '' -C "e2e-d-$RUN" -f "$T/dkey" || fail "ssh-keygen"
api PUT "/api/v1/users/$UD/keys" "$(jq -n --arg k "$(<"$T/dkey.pub")" '{public_key: $k}')"
assert_code 200 "PUT /users/$UD/keys"
# before the burst, $UD's key is good (no session: the no-session message, status 1)
sshg "$UD" "$T/dkey" true </dev/null >/dev/null 2>&1
assert_eq "$?" 1 "$UD (registered key, no session) before the burst"
ok=0 bad=0
t0=$(now)
for i in $(seq 20); do
  timeout 15 ssh "${SSH_OPTS[@]}" -b 127.0.0.2 -i "$T/wrongkey" -p "$GW_PORT" "$UD@127.0.0.1" true </dev/null >/dev/null 2>&1
  rc=$?
  if [ "$rc" = 255 ]; then ok=$((ok + 1)); else bad=$((bad + 1)); echo "   attempt $i: status $rc"; fi
done
note "  20 attempts in $(fsub "$(now)" "$t0") s"
assert_eq "$bad" 0 "brute-force attempts that did not end with 255"
assert_eq "$(SSHG_TIMEOUT=15 sshg "$UB" "$KEY_B" 'echo served' </dev/null)" served "$UB through the gateway after the burst"
kill -0 "$DPID" 2>/dev/null || fail "daemon died during the brute-force burst"
# the burst blocks its source address for a while; it cannot lock $UD out from
# elsewhere (issue 10): her right key still gets in (no session: status 1)
timeout 15 ssh "${SSH_OPTS[@]}" -b 127.0.0.2 -i "$KEY_B" -p "$GW_PORT" "$UB@127.0.0.1" true </dev/null >/dev/null 2>&1
assert_eq "$?" 255 "$UB from the blocked address 127.0.0.2"
sshg "$UD" "$T/dkey" true </dev/null >/dev/null 2>&1
assert_eq "$?" 1 "$UD with the right key from another address after the burst naming her"
grep -q 'gateway_blocked' "$DAEMON_LOG" || fail "no gateway_blocked line in the daemon log"

note "the gateway still serves: $UB exec through the gateway, daemon healthy"
assert_eq "$(sshg "$UB" "$KEY_B" 'head -c 1000000 /dev/zero | wc -c' </dev/null)" 1000000 "$UB exec at the end"
curl -fsS -o /dev/null --max-time 5 "$API/healthz" || fail "/healthz at the end"
exit 0

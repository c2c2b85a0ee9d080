#!/usr/bin/env bash
# e2e: the daemon's API survives what the network sends it, with no token:
# a path that is not UTF-8 (once fatal), a truncated head, a flood of header
# lines, 200 slow clients while /healthz keeps answering fast, and kept-alive
# requests that do not wait on delayed ACKs. The daemon must be alive after each.
# Usage: http_abuse_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
PY=${PY:-/usr/bin/python3}
start_daemon
PORT=${API##*:}

alive() { kill -0 "$DPID" 2>/dev/null || fail "the daemon died: $1"; }

# raw BYTES: sends bytes (printf format) to the API and prints the status line's code, or "closed".
raw() {
  "$PY" - "$PORT" "$1" <<'PY'
import socket, sys
port, data = int(sys.argv[1]), sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1")
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(data)
s.shutdown(socket.SHUT_WR)
out = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        out += chunk
except OSError:
    pass
print(out.split(b" ")[1].decode() if out.startswith(b"HTTP/1.1 ") else "closed")
PY
}

note "a path that is not UTF-8, without a token"
code=$(raw 'GET /api/v1/sessions/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n')
assert_eq "$code" 400 "status for a path with bytes that are not UTF-8"
alive "after a path that is not UTF-8"
code=$(raw 'GET /nope/\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n')
assert_eq "$code" 400 "status for an unrouted path that is not UTF-8"
alive "after an unrouted path that is not UTF-8"

note "truncated and malformed heads"
for head in 'GET / HTTP/1.1\r\nHost: x\r\n' 'GET /healthz HTTP/1.1\r\nHost' '\r\n\r\n\r\n' \
            'GET / HTTP/1.1\r\n\x00\x01\x02: \xff\r\n\r\n' 'POST /api/v1/sessions HTTP/1.1\r\nContent-Length: 99\r\n\r\n{"user'; do
  raw "$head" >/dev/null
  alive "after the head '$head'"
done

note "a JSON body with a string that is not UTF-8"
api_curl "$TOKEN" POST /api/v1/sessions -H 'Content-Type: application/json' \
  --data-binary $'{"user_id":"al\xffice","ttl_minutes":5}'
assert_eq "$CODE" 400 "status for a JSON string that is not UTF-8"
alive "after a JSON body that is not UTF-8"

note "a flood of header lines is cut off at the head limit"
out=$("$PY" - "$PORT" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /healthz HTTP/1.1\r\n")
sent = 0
try:
    while sent < 50_000_000:
        s.sendall(b"X-Pad: " + b"p" * 1000 + b"\r\n")
        sent += 1009
except OSError:
    pass
print("sent", sent)
PY
)
note "$out before the daemon cut the connection"
case "$out" in "sent 50000"*) fail "the daemon read 50 MB of header lines without cutting the connection" ;; esac
rss=$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")
[ "$rss" -lt 200000 ] || fail "daemon RSS ${rss} KiB after a header flood"
alive "after a header flood"

note "200 slow clients while /healthz answers"
result=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
slow = []
for i in range(200):
    s = socket.socket()
    s.bind((f"127.0.0.{2 + i % 2}", 0))
    s.connect(("127.0.0.1", port))
    if i % 3 == 0: s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    if i % 3 == 1: s.sendall(b"POST /api/v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{")
    slow.append(s)
times = []
for i in range(100):
    t0 = time.perf_counter()
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        chunk = c.recv(4096)
        if not chunk: break
        data += chunk
    c.close()
    times.append((time.perf_counter() - t0) * 1000)
    assert data.startswith(b"HTTP/1.1 200"), data[:80]
    for s in slow[i * 2:i * 2 + 2]:
        try: s.send(b"a")
        except OSError: pass
times.sort()
print(f"p50={times[50]:.2f} p99={times[98]:.2f}")
PY
) || fail "a /healthz request failed under 200 slow clients: $result"
note "/healthz under 200 slow clients (ms): $result"
p99=${result##*p99=}
"$PY" -c "import sys; sys.exit(0 if float('$p99') < 100 else 1)" || fail "/healthz p99 ${p99} ms under 200 slow clients (limit 100)"
alive "after 200 slow clients"

note "kept-alive requests do not wait on delayed ACKs"
ms=$("$PY" - "$PORT" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
t0 = time.perf_counter()
for _ in range(200):
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        data += s.recv(4096)
print(int((time.perf_counter() - t0) * 1000))
PY
)
note "200 kept-alive requests on one connection: ${ms} ms"
[ "$ms" -lt 2000 ] || fail "200 kept-alive /healthz requests took ${ms} ms (the Nagle stall made it 8 s)"

curl -fsS -o /dev/null --max-time 2 "$API/healthz" || fail "/healthz after the abuse"
stop_daemon
exit 0

#!/usr/bin/env bash
# e2e: --tls-cert/--tls-key serve the API over HTTPS; the CLI verifies the
# daemon against --cacert and refuses an unverified one; plain HTTP to the TLS
# port gets no API; the slow-client and UTF-8 rules hold over TLS too.
# Usage: api_tls_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
command -v openssl >/dev/null || fail "required tool 'openssl' is not installed"

CERT=$E2E_TMP/api-cert.pem KEY=$E2E_TMP/api-key.pem OTHER=$E2E_TMP/other-cert.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$KEY" -out "$CERT" 2>/dev/null || fail "openssl could not make a certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$E2E_TMP/other-key.pem" -out "$OTHER" 2>/dev/null
chmod 600 "$KEY"

note "one of --tls-cert/--tls-key alone is refused at start-up"
if timeout 20 "$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$E2E_TMP/x.db" --token-file "$E2E_TMP/x-token" \
  --tls-cert "$CERT" >"$E2E_TMP/half.log" 2>&1; then
  fail "the daemon started with --tls-cert and no --tls-key"
fi
assert_contains "$(cat "$E2E_TMP/half.log")" "--tls-cert and --tls-key go together" "start-up error"

# start_daemon polls http://; poll https:// ourselves.
DAEMON_FLAGS=(--tls-cert "$CERT" --tls-key "$KEY")
"$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$DB" --workspace-root "$WS" \
  --token-file "$TOKEN_FILE" --ssh-bind 127.0.0.1 --ssh-host 127.0.0.1 \
  --ssh-port-start "$SSH_START" --ssh-port-end "$SSH_END" --network "$NET" --image "$IMAGE" \
  --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" "${DAEMON_FLAGS[@]}" >>"$DAEMON_LOG" 2>&1 </dev/null &
DPID=$!
ALL_DPIDS+=("$DPID")
HTTPS=https://127.0.0.1:$API_PORT
for _ in $(seq 200); do
  curl -fsS -o /dev/null --max-time 2 --cacert "$CERT" "$HTTPS/healthz" 2>/dev/null && break
  kill -0 "$DPID" 2>/dev/null || fail "daemon exited during start-up"
  sleep 0.1
done
TOKEN=$(<"$TOKEN_FILE")

note "HTTPS with the right CA; plain HTTP and an unknown CA get nothing"
out=$(curl -fsS --max-time 5 --cacert "$CERT" "$HTTPS/healthz") || fail "GET /healthz over https"
assert_contains "$out" healthy "/healthz over https"
if curl -fsS --max-time 5 --cacert "$OTHER" "$HTTPS/healthz" >/dev/null 2>&1; then
  fail "curl accepted the daemon's certificate against another CA"
fi
if curl -fsS --max-time 5 "http://127.0.0.1:$API_PORT/healthz" >/dev/null 2>&1; then
  fail "plain HTTP got an answer from the TLS port"
fi
kill -0 "$DPID" || fail "the daemon died after a plain HTTP request to its TLS port"

note "the CLI verifies the daemon"
out=$(SANDMAN_TOKEN=$TOKEN "$SANDMAN" sessions ls --server "$HTTPS" --cacert "$CERT" 2>&1) ||
  fail "sandman sessions ls over https with --cacert: $out"
if out=$(SANDMAN_TOKEN=$TOKEN "$SANDMAN" sessions ls --server "$HTTPS" --cacert "$OTHER" 2>&1); then
  fail "the CLI trusted a daemon whose certificate its CA did not sign: $out"
fi
assert_contains "$out" "cannot reach the daemon" "CLI error for an unverified daemon"
if out=$(SANDMAN_TOKEN=$TOKEN "$SANDMAN" sessions ls --server "$HTTPS" 2>&1); then
  fail "the CLI trusted a self-signed daemon without --cacert: $out"
fi

note "request rules hold over TLS: not-UTF-8 path, Content-Type, token"
code=$(curl -s -o /dev/null -w '%{http_code}' --path-as-is --cacert "$CERT" $'https://127.0.0.1:'"$API_PORT"$'/api/v1/sessions/\xff')
assert_eq "$code" 400 "a path that is not UTF-8 over https"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CERT" -H "Authorization: Bearer $TOKEN" \
  -H 'Content-Type: text/plain' --data '{"user_id":"x"}' "$HTTPS/api/v1/sessions")
assert_eq "$code" 415 "a body that is not declared JSON"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CERT" "$HTTPS/api/v1/sessions")
assert_eq "$code" 401 "no token over https"

note "browser login over TLS: the cookie is Secure; the event stream flows over TLS"
head=$(curl -sS -D - -o /dev/null --cacert "$CERT" -H 'Content-Type: application/json' \
  --data-binary "{\"token\":\"$TOKEN\"}" "$HTTPS/api/v1/login" | tr -d '\r')
assert_match "$head" "Set-Cookie: sandman_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/; Secure" "the login cookie over https"
stream=$(curl -sS -N --max-time 3 --cacert "$CERT" -H "Authorization: Bearer $TOKEN" "$HTTPS/api/v1/events/stream" 2>/dev/null)
assert_contains "$stream" ": connected" "the event stream over https"

note "a client that never finishes its TLS handshake is cut at the head deadline, others go on"
PY=${PY:-/usr/bin/python3}
"$PY" - "$API_PORT" <<'PY' &
import socket, sys, time
socks = []
for _ in range(50):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"\x16\x03\x01")  # the start of a ClientHello, never finished
    socks.append(s)
time.sleep(15)
PY
HOLDER=$!
BG_PIDS+=("$HOLDER")
sleep 0.5
t0=$(now)
curl -fsS -o /dev/null --max-time 5 --cacert "$CERT" "$HTTPS/healthz" || fail "/healthz while 50 handshakes hang"
fle "$(fsub "$(now)" "$t0")" 1 || fail "/healthz took $(fsub "$(now)" "$t0") s while 50 handshakes hang"
kill "$HOLDER" 2>/dev/null

stop_daemon
exit 0

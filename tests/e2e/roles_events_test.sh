#!/usr/bin/env bash
# e2e: roles, browser login and the event stream (issue 15) on a real daemon (Docker, NVML simulator).
# curl logs in with a cookie jar, whoami says who it is; the viewer token reads but a write is 403; a
# cookie write without X-Sandman-CSRF is 403 and with it goes through; the event stream (curl -N)
# shows a created session's `session` event, a `gpu` event per sample, and the `alert` event of a
# temperature forced in the simulator within a few seconds; a reconnect with Last-Event-ID (header
# and ?last_event_id=) replays what it missed; an id older than the ring gets `event: reset`. An ack
# through the cookie shows as `acknowledged`; a `cost` event carries the month's spend and budgets.
# Usage: roles_events_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

HOT_GPU=GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182  # the RTX-4090, index 3 in mixed-host.json
use_sim_fixture mixed-host.json

set_temp() {
  "$PY" - "$SANDMAN_NVML_SIM_CONFIG" "$1" <<'PY'
import json, os, sys
path, temp = sys.argv[1], int(sys.argv[2])
with open(path) as f:
    c = json.load(f)
c["gpus"][3]["telemetry"]["temperature"] = temp
with open(path + ".tmp", "w") as f:
    json.dump(c, f)
os.replace(path + ".tmp", path)
PY
}

RULES=$E2E_TMP/alert-rules.json
cat >"$RULES" <<'JSON'
{"rules": [{"name": "E2eStreamHot", "metric": "temperature", "op": ">", "threshold": 85, "for": "1s",
            "severity": "critical", "scope": "gpu", "summary": "GPU {{gpu}} at {{value}} C"}]}
JSON

VIEWER_FILE=$E2E_TMP/viewer-token
note "a viewer token file others can read is refused, like the admin's"
(umask 022; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VIEWER_FILE")
chmod 644 "$VIEWER_FILE"
out=$(timeout 60 "$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$DB" --workspace-root "$WS" \
  --token-file "$TOKEN_FILE" --viewer-token-file "$VIEWER_FILE" --ssh-bind 127.0.0.1 --ssh-host 127.0.0.1 \
  --ssh-port-start "$SSH_START" --ssh-port-end "$SSH_END" --network "$NET" --image "$IMAGE" \
  --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" --gpu-backend nvml --nvml-library "$SIMLIB" 2>&1 </dev/null)
assert_ne "$?" 0 "exit status with a world-readable viewer token"
assert_contains "$out" "chmod 600 $VIEWER_FILE" "the error says how to fix it"
chmod 600 "$VIEWER_FILE"

start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s --alert-rules "$RULES" \
  --viewer-token-file "$VIEWER_FILE"
VIEWER=$(<"$VIEWER_FILE")
assert_not_contains "$(cat "$DAEMON_LOG")" "$VIEWER" "the viewer token is never logged"
assert_not_contains "$(cat "$DAEMON_LOG")" "$TOKEN" "the admin token is never logged"

note "roles by token"
api_as "$VIEWER" GET /api/v1/whoami
assert_code 200 "whoami as the viewer"
assert_eq "$(jb '.role + "/" + .via')" "viewer/token" "the viewer token's role"
api_as "$VIEWER" GET /api/v1/sessions
assert_code 200 "the viewer reads sessions"
api_as "$VIEWER" POST /api/v1/sessions '{"user_id":"nobody"}'
assert_code 403 "the viewer cannot create a session"
assert_eq "$(jb .code)" forbidden "the error's code"
api GET /api/v1/whoami
assert_eq "$(jb '.role + "/" + .via')" "admin/token" "the admin token's role"

note "browser login with a cookie jar"
JAR=$E2E_TMP/cookies
CSRF=(-H 'X-Sandman-CSRF: 1')
api_curl "" POST /api/v1/login --data-binary '{"token":"wrong-wrong-wrong-wrong"}' -c "$JAR"
assert_code 401 "a wrong token"
[ ! -s "$JAR" ] || ! grep -q sandman_session "$JAR" || fail "a failed login set a cookie: $(cat "$JAR")"
curl -sS -D "$E2E_TMP/login.head" -o /dev/null -c "$JAR" -H 'Content-Type: application/json' \
  --data-binary "{\"token\":\"$TOKEN\"}" "$API/api/v1/login"
login_head=$(tr -d '\r' <"$E2E_TMP/login.head")
assert_contains "$login_head" "HTTP/1.1 204" "login answers 204"
assert_match "$login_head" "Set-Cookie: sandman_session=[0-9a-f]{64}; HttpOnly; SameSite=Strict; Path=/" "the cookie's attributes"
assert_not_contains "$login_head" "$TOKEN" "the cookie is not the token"
api_curl "" GET /api/v1/whoami -b "$JAR"
assert_code 200 "whoami with the cookie"
assert_eq "$(jb '.role + "/" + .via')" "admin/cookie" "the cookie's role"
api_curl "" POST /api/v1/sessions -b "$JAR" --data-binary '{"user_id":"nobody"}'
assert_code 403 "a cookie write without X-Sandman-CSRF"
assert_contains "$(jb .error)" "X-Sandman-CSRF" "the error names the header"

note "the event stream"
STREAM=$E2E_TMP/stream.txt
curl -sS -N --max-time 120 -b "$JAR" -D "$E2E_TMP/stream.head" "$API/api/v1/events/stream" >"$STREAM" 2>"$E2E_TMP/stream.err" &
STREAM_PID=$!
BG_PIDS+=("$STREAM_PID")
# wait_stream FILE REGEX SECONDS: until FILE has a line matching REGEX.
wait_stream() {
  local end=$(($(date +%s) + $3))
  while [ "$(date +%s)" -le "$end" ]; do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
wait_stream "$STREAM" '^: connected' 10 || fail "the stream did not open: $(cat "$E2E_TMP/stream.err")"
assert_contains "$(tr -d '\r' <"$E2E_TMP/stream.head")" "Content-Type: text/event-stream" "the stream's type"
wait_stream "$STREAM" '^event: gpu' 10 || fail "no gpu event within 10 s of a 1 s sampler"
gpu_data=$(grep -A1 '^event: gpu' "$STREAM" | grep '^data: ' | head -1 | cut -c7-)
assert_eq "$(jq -r '.gpus | length' <<<"$gpu_data")" 4 "a gpu event lists the host's GPUs"
assert_ne "$(jq -r '.at' <<<"$gpu_data")" null "a gpu event carries its time"

mkuser USER1 ev
api_curl "" POST /api/v1/sessions -b "$JAR" "${CSRF[@]}" --data-binary "{\"user_id\":\"$USER1\"}"
assert_code 201 "a cookie write with X-Sandman-CSRF"
SID=$(jb .session_id)
SIDS+=("$SID")
wait_stream "$STREAM" "\"action\":\"created\",\"session\":\\{[^}]*\"session_id\":\"$SID\"" 10 ||
  wait_stream "$STREAM" "\"action\":\"created\".*$SID" 1 || fail "no session created event for $SID"
wait_stream "$STREAM" "\"action\":\"updated\".*\"status\":\"running\".*$SID|\"action\":\"updated\".*$SID.*\"status\":\"running\"" 60 ||
  fail "no session event for $SID reaching running"

note "a forced temperature arrives as an alert event"
t0=$(date +%s.%N)
set_temp 93
wait_stream "$STREAM" '"action":"firing","alert":\{.*"rule":"E2eStreamHot"' 10 || fail "no firing alert event within 10 s"
t1=$(date +%s.%N)
note "alert event after $(fsub "$t1" "$t0") s (1 s sampler, 1 s 'for')"
ALERT_ID=$(grep -o '"action":"firing","alert":{[^}]*' "$STREAM" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
[ -n "$ALERT_ID" ] || fail "no alert id in the firing event"
api_curl "" POST "/api/v1/alerts/$ALERT_ID/ack" -b "$JAR" "${CSRF[@]}" --data-binary '{"by":"e2e"}'
assert_code 200 "ack through the cookie with X-Sandman-CSRF"
wait_stream "$STREAM" '"action":"acknowledged"' 5 || fail "no acknowledged alert event"
set_temp 40
wait_stream "$STREAM" '"action":"resolved"' 10 || fail "no resolved alert event"

note "a new budget shows in a cost event with this month's spend"
api PUT /api/v1/budgets "{\"scope\":\"user\",\"name\":\"$USER1\",\"usd_per_month\":100}"
assert_code 200 "PUT /budgets"
wait_stream "$STREAM" "^data: .*\"budget\":\"user/$USER1\".*\"month_to_date_usd\"|^data: .*\"month_to_date_usd\".*\"budget\":\"user/$USER1\"" 15 ||
  fail "no cost event with the new budget within 15 s"
cost_data=$(grep -A1 '^event: cost' "$STREAM" | grep '^data: ' | tail -1 | cut -c7-)
assert_eq "$(jq -r '(.month_to_date_usd | type) + "/" + (.budgets | type)' <<<"$cost_data")" "number/array" "the cost event's shape"

note "resume with Last-Event-ID"
LAST=$(grep '^id: ' "$STREAM" | tail -1 | cut -c5-)
MID=$(grep -B1 '^event: session' "$STREAM" | grep '^id: ' | head -1 | cut -c5-)
[ -n "$MID" ] || fail "no id before the session event"
# The session's events after MID come back, in order, before anything live.
curl -sS -N --max-time 3 -b "$JAR" -H "Last-Event-ID: $((MID - 1))" "$API/api/v1/events/stream" >"$E2E_TMP/resume.txt" 2>/dev/null
first=$(grep '^id: ' "$E2E_TMP/resume.txt" | head -1 | cut -c5-)
assert_eq "$first" "$MID" "the replay starts right after Last-Event-ID"
grep -q '"action":"created"' "$E2E_TMP/resume.txt" || fail "the replay lacks the created event"
ids=$(grep '^id: ' "$E2E_TMP/resume.txt" | cut -c5-)
[ "$ids" = "$(sort -n <<<"$ids")" ] || fail "replayed ids are not increasing"
curl -sS -N --max-time 3 -H "Authorization: Bearer $VIEWER" "$API/api/v1/events/stream?last_event_id=$LAST" \
  >"$E2E_TMP/resume2.txt" 2>/dev/null
grep -q "^id: $LAST\$" "$E2E_TMP/resume2.txt" && fail "event $LAST was sent again after ?last_event_id=$LAST"
curl -sS -N --max-time 3 -b "$JAR" -H "Last-Event-ID: 1" "$API/api/v1/events/stream" >"$E2E_TMP/reset.txt" 2>/dev/null
assert_contains "$(cat "$E2E_TMP/reset.txt")" "event: reset" "an id from long ago gets a reset"

note "delete shows as deleted; logout ends the cookie"
api DELETE "/api/v1/sessions/$SID"
assert_code 200 "delete"
wait_stream "$STREAM" "\"action\":\"deleted\".*$SID" 30 || fail "no deleted event for $SID"
api_curl "" POST /api/v1/logout -b "$JAR" -c "$JAR" --data-binary ""
assert_code 204 "logout"
api_curl "" GET /api/v1/whoami -b "$JAR"
assert_code 401 "whoami after logout"
note "a daemon with open streams stops cleanly"
stop_daemon
assert_eq "$DAEMON_RC" 0 "daemon exit status"
wait "$STREAM_PID" 2>/dev/null
note "ok"

#!/usr/bin/env bash
# e2e: the built-in alert engine end to end. The daemon samples the NVML simulator every second with a
# 3 s temperature rule; a forced 91 C shows the alert pending, then firing; a webhook receiver that
# refuses the first POST with 500 still gets it (retry), Debian's real Alertmanager shows it active
# with Sandman's labels; an ack is recorded; a restart while firing opens no duplicate; cooling
# resolves it in Sandman, at the webhook and in Alertmanager. A bad rule file stops start-up.
# Usage: alerts_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

ALERTMANAGER=${SANDMAN_E2E_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
[ -x "$ALERTMANAGER" ] || fail "$ALERTMANAGER is missing: apt-get install prometheus-alertmanager"
command -v "$PY" >/dev/null || fail "python3 is required for the webhook receiver"

HOT_GPU=GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182  # the RTX-4090, index 3 in mixed-host.json
use_sim_fixture mixed-host.json

# set_temp C: what the simulator reports for GPU 3 from its next read on (it reloads a changed file).
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
{"rules": [{"name": "E2eGpuHot", "metric": "temperature", "op": ">", "threshold": 85, "for": "3s",
            "severity": "critical", "scope": "gpu", "summary": "GPU {{gpu}} at {{value}} C"}]}
JSON

note "a bad rule file stops start-up, naming the file, the rule and the field"
BAD=$E2E_TMP/bad-rules.json
echo '{"rules": [{"name": "Typo", "metric": "temperature", "op": "=>", "threshold": 1, "severity": "info"}]}' >"$BAD"
out=$(timeout 60 "$SANDMAN" serve --bind 127.0.0.1 --port "$API_PORT" --db "$DB" --workspace-root "$WS" \
  --token-file "$TOKEN_FILE" --ssh-bind 127.0.0.1 --ssh-host 127.0.0.1 --ssh-port-start "$SSH_START" \
  --ssh-port-end "$SSH_END" --network "$NET" --image "$IMAGE" --gateway-bind 127.0.0.1 --gateway-port "$GW_PORT" \
  --gpu-backend nvml --nvml-library "$SIMLIB" --alert-rules "$BAD" 2>&1 </dev/null)
rc=$?
assert_ne "$rc" 0 "exit status with a bad rule file"
assert_ne "$rc" 124 "a bad rule file must stop start-up, not hang"
assert_contains "$out" "$BAD" "the error names the file"
assert_contains "$out" "rules[0] (Typo)" "the error names the rule"
assert_contains "$out" "'op'" "the error names the field"

note "webhook receiver (answers 500 to the first POST) and Alertmanager on loopback"
HOOK_PORT=$(free_port) || fail "no free port for the webhook receiver"
HOOK_LOG=$E2E_TMP/hook.jsonl
"$PY" - "$HOOK_PORT" "$HOOK_LOG" <<'PY' >"$E2E_TMP/hook.out" 2>&1 &
import http.server, sys
port, log = int(sys.argv[1]), sys.argv[2]
seen = [0]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        seen[0] += 1
        with open(log + ".attempts", "a") as f:
            f.write("%d\n" % seen[0])
        if seen[0] == 1:
            self.send_response(500)
            self.end_headers()
            return
        with open(log, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Hook).serve_forever()
PY
BG_PIDS+=($!)
AM_PORT=$(free_port) || fail "no free port for Alertmanager"
while [ "$AM_PORT" = "$HOOK_PORT" ]; do AM_PORT=$(free_port); done
AM=http://127.0.0.1:$AM_PORT
mkdir -p "$E2E_TMP/am/data"
cat >"$E2E_TMP/am/alertmanager.yml" <<'YML'
route:
  receiver: blackhole
receivers:
  - name: blackhole
YML
"$ALERTMANAGER" --config.file="$E2E_TMP/am/alertmanager.yml" --storage.path="$E2E_TMP/am/data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$E2E_TMP/am/log" 2>&1 </dev/null &
BG_PIDS+=($!)
for _ in $(seq 100); do
  curl -fsS -o /dev/null --max-time 2 "$AM/-/ready" 2>/dev/null && port_open "$HOOK_PORT" && break
  sleep 0.1
done
curl -fsS -o /dev/null --max-time 2 "$AM/-/ready" || fail "Alertmanager did not get ready: $(tail -5 "$E2E_TMP/am/log")"
port_open "$HOOK_PORT" || fail "webhook receiver did not start: $(cat "$E2E_TMP/hook.out")"

start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s --alert-rules "$RULES" \
  --alert-webhook "http://127.0.0.1:$HOOK_PORT/hook" --alertmanager "$AM"

api GET /api/v1/alerts/rules
assert_code 200 "GET /alerts/rules"
assert_eq "$(jb '.rules[0].name')" E2eGpuHot "the rule from --alert-rules"
api GET /api/v1/alerts
assert_code 200 "GET /alerts"
assert_eq "$(jb .count)" 0 "active alerts on a cool host"
api GET '/api/v1/alerts?state=burning'
assert_code 400 "unknown state"
assert_error_json "unknown state"

# wait_alert STATE SECONDS: until GET /alerts?state=STATE lists the hot GPU's alert; sets ALERT (its JSON).
wait_alert() {
  local state=$1 secs=$2 end
  end=$(($(date +%s) + secs))
  while [ "$(date +%s)" -le "$end" ]; do
    api GET "/api/v1/alerts?state=$state"
    ALERT=$(jq -c --arg g "$HOT_GPU" '[.alerts[] | select(.rule == "E2eGpuHot" and .labels.gpu_uuid == $g)][0] // empty' <<<"$BODY")
    [ -n "$ALERT" ] && return 0
    sleep 0.2
  done
  return 1
}

note "91 C: pending first, firing once it has held for 3 s"
set_temp 91
wait_alert pending 15 || fail "the alert never showed as pending: $BODY"
ID=$(jq -r .id <<<"$ALERT")
assert_eq "$(jq -r .labels.gpu <<<"$ALERT")" 3 "gpu label"
assert_eq "$(jq -r .severity <<<"$ALERT")" critical "severity"
assert_eq "$(jq -r .fired_at <<<"$ALERT")" null "fired_at while pending"
[ -s "$HOOK_LOG" ] && fail "a pending alert was delivered: $(cat "$HOOK_LOG")"
wait_alert firing 15 || fail "the alert never fired: $BODY"
assert_eq "$(jq -r .id <<<"$ALERT")" "$ID" "the same alert moved to firing"
assert_eq "$(jq -r .summary <<<"$ALERT")" "GPU 3 at 91 C" "summary"
pending_at=$(ts "$(jq -r .pending_at <<<"$ALERT")") || fail "bad pending_at in $ALERT"
fired_at=$(ts "$(jq -r .fired_at <<<"$ALERT")") || fail "bad fired_at in $ALERT"
held=$(fsub "$fired_at" "$pending_at")
fle 3 "$held" || fail "fired after $held s, before the rule's 3 s"
fle "$held" 5.5 || fail "fired $held s after pending; expected about 3 s with 1 s samples"
m=$(curl -fsS "$API/metrics") || fail "/metrics not served"
grep -qE '^sandman_alerts\{alertname="E2eGpuHot",severity="critical",state="firing"\} 1$' <<<"$m" ||
  fail "/metrics does not show the firing alert: $(grep '^sandman_alerts' <<<"$m")"

note "the webhook got it after one refused attempt"
for _ in $(seq 100); do grep -q '"status":"firing"' "$HOOK_LOG" 2>/dev/null && break; sleep 0.1; done
line=$(grep '"status":"firing"' "$HOOK_LOG" 2>/dev/null | head -1)
[ -n "$line" ] || fail "no firing POST at the webhook; attempts: $(wc -l <"$HOOK_LOG.attempts" 2>/dev/null)"
assert_eq "$(jq -r .id <<<"$line")" "$ID" "webhook alert id"
assert_eq "$(jq -r .labels.gpu_uuid <<<"$line")" "$HOT_GPU" "webhook gpu_uuid"
[ "$(wc -l <"$HOOK_LOG.attempts")" -ge 2 ] || fail "the refused POST was not retried"

# am_alert: the hot GPU's E2eGpuHot alert in Alertmanager's default (active) list, or empty.
# An unreachable Alertmanager prints "unreachable", so "gone" is never mistaken for "no answer".
am_alert() {
  local list
  list=$(curl -fsS --max-time 5 "$AM/api/v2/alerts") || { echo unreachable; return; }
  jq -c --arg g "$HOT_GPU" '[.[] | select(.labels.alertname == "E2eGpuHot" and .labels.gpu_uuid == $g)][0] // empty' <<<"$list"
}
note "Alertmanager shows it active with Sandman's labels"
am=
for _ in $(seq 100); do am=$(am_alert); [ -n "$am" ] && [ "$am" != unreachable ] && break; sleep 0.1; done
[ -n "$am" ] && [ "$am" != unreachable ] || fail "Alertmanager never listed the alert: $(curl -sS "$AM/api/v2/alerts")"
assert_eq "$(jq -r .status.state <<<"$am")" active "Alertmanager state"
assert_eq "$(jq -r .labels.severity <<<"$am")" critical "Alertmanager severity label"
assert_eq "$(jq -r .labels.gpu <<<"$am")" 3 "Alertmanager gpu label"
assert_eq "$(jq -r .annotations.summary <<<"$am")" "GPU 3 at 91 C" "Alertmanager summary"
ends=$(ts "$(jq -r .endsAt <<<"$am")") || fail "bad endsAt: $am"
fle "$(now)" "$ends" || fail "a firing alert's endsAt is in the past: $am"

note "ack: recorded, idempotent, 404 for an unknown id"
api POST "/api/v1/alerts/$ID/ack" '{"by":"e2e-operator"}'
assert_code 200 "ack"
assert_eq "$(jb .acked_by)" e2e-operator "acked_by"
api POST "/api/v1/alerts/$ID/ack" '{"by":"someone-else"}'
assert_code 200 "second ack"
assert_eq "$(jb .acked_by)" e2e-operator "the first ack stands"
api POST /api/v1/alerts/987654321/ack '{}'
assert_code 404 "ack of an unknown alert"
assert_error_json "ack 404"

note "the CLI lists the acknowledged firing alert and refuses a malformed id"
cli_out=$("$SANDMAN" alerts ls --server "$API" --token-file "$TOKEN_FILE" 2>&1) || fail "sandman alerts ls: $cli_out"
assert_match "$(grep -E "^$ID " <<<"$cli_out")" "^$ID +[A-Za-z0-9_]+ +critical +firing\\* " "CLI row of the alert"
"$SANDMAN" alerts ack ../1 --server "$API" --token-file "$TOKEN_FILE" >/dev/null 2>&1 &&
  fail "sandman alerts ack accepted a non-numeric id"

note "restart while firing: the same alert continues, no duplicate, no second notification"
stop_daemon
restart_daemon
sleep 3  # three samples, still hot
api GET '/api/v1/alerts?state=all'
assert_code 200 "GET /alerts?state=all after restart"
assert_eq "$(jq '[.alerts[] | select(.rule == "E2eGpuHot")] | length' <<<"$BODY")" 1 "E2eGpuHot rows after a restart"
assert_eq "$(jq -r '.alerts[0].id' <<<"$BODY")" "$ID" "the alert id after restart"
assert_eq "$(jq -r '.alerts[0].state' <<<"$BODY")" firing "state after restart"
assert_eq "$(jq -r '.alerts[0].acked_by' <<<"$BODY")" e2e-operator "the ack survives the restart"
assert_eq "$(grep -c '"status":"firing"' "$HOOK_LOG")" 1 "firing webhooks after the restart"

note "40 C: resolved in Sandman, at the webhook and in Alertmanager"
set_temp 40
wait_alert resolved 15 || fail "the alert never resolved: $BODY"
assert_eq "$(jq -r .id <<<"$ALERT")" "$ID" "the resolved alert"
assert_ne "$(jq -r .resolved_at <<<"$ALERT")" null "resolved_at"
api GET /api/v1/alerts
assert_eq "$(jb .count)" 0 "active alerts after cooling"
for _ in $(seq 100); do grep -q '"status":"resolved"' "$HOOK_LOG" 2>/dev/null && break; sleep 0.1; done
grep -q '"status":"resolved"' "$HOOK_LOG" || fail "no resolved POST at the webhook: $(cat "$HOOK_LOG")"
for _ in $(seq 100); do [ -z "$(am_alert)" ] && break; sleep 0.1; done
[ -z "$(am_alert)" ] || fail "Alertmanager still lists the alert as active: $(am_alert)"
# Alertmanager keeps resolved alerts only until it has processed them; the default list must no longer
# show it, and a firing one must not reappear at the next re-send.
sleep 2
[ -z "$(am_alert)" ] || fail "the alert came back in Alertmanager: $(am_alert)"

stop_daemon
assert_eq "$DAEMON_RC" 0 "daemon exit status"

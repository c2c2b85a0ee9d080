#!/usr/bin/env bash
# web: the dashboard in headless Chromium (playwright-core driving Debian's chromium) against a real daemon on
# Docker with the NVML simulator: every page loads with no console error and no serious or critical axe-core
# violation (screenshots kept); a session is created and deleted from the page and the ssh command it shows
# logs in; a temperature forced in the simulator shows its alert on the open page within 3 s, no reload.
# Nodes: the host listed and filtered, maintenance set from its page refuses a create (the Sessions page shows
# why), a viewer sees it but no control, active again; a status set through the API shows on the open page
# (node event); a Kubernetes-shaped node list (answered by the test) renders too. API reference: the daemon's /openapi.json shows
# GET /api/v1/sessions with its summary (a daemon without the document: the page says so), and the
# page's rendering ($ref, deep schemas, filter, keyboard) against tests/web/openapi-sample.json.
# Then the overview's render time with 64 GPUs x 7 MIG slices (browser performance API).
# Artifacts (screenshots, figures-*.json): $SANDMAN_WEB_ARTIFACTS, default web-artifacts/ beside the binary.
# Usage: dashboard_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
e2e_init "$@"

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ART=${SANDMAN_WEB_ARTIFACTS:-$(dirname "$SANDMAN")/web-artifacts}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || fail "$CHROMIUM is missing: apt-get install chromium"
command -v node >/dev/null || fail "node is missing: apt-get install nodejs npm"
[ -d "$ROOT/web/node_modules/playwright-core" ] || fail "web/node_modules is missing: run 'npm ci' in web/"
[ -f "$(dirname "$SANDMAN")/web/index.html" ] || fail "the dashboard is not built beside $SANDMAN (cmake --build: target web_assets)"
rm -rf "$ART"
mkdir -p "$ART"

HOT_RULE=WebGpuHot
RULES=$E2E_TMP/alert-rules.json
cat >"$RULES" <<'JSON'
{"rules": [{"name": "WebGpuHot", "metric": "temperature", "op": ">", "threshold": 85,
            "severity": "critical", "scope": "gpu", "summary": "GPU {{gpu}} at {{value}} C"}]}
JSON

# force_hot: the simulator reports GPU 3 at 95 C from its next read on (it reloads a changed file).
FORCE_HOT="$PY - '$E2E_TMP/mixed-host.json' <<'PY'
import json, os, sys
p = sys.argv[1]
c = json.load(open(p))
c['gpus'][3]['telemetry']['temperature'] = 95
json.dump(c, open(p + '.tmp', 'w'))
os.replace(p + '.tmp', p)
PY"

use_sim_fixture mixed-host.json
mkuser WUSER web
KEY=$E2E_TMP/keys/web
ssh-keygen -q -t ed25519 -N '' -f "$KEY" || fail "ssh-keygen"
FLAGS=(--gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s --alert-rules "$RULES")
VIEWER_TOKEN=
# Read whole before matching: under pipefail, grep -q closing the pipe early makes the daemon's write fail
# (SIGPIPE) and the test would silently skip the viewer's checks.
if grep -q -- --viewer-token-file <<<"$("$SANDMAN" serve --help 2>&1)"; then
  VIEWER_TOKEN=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  echo "$VIEWER_TOKEN" >"$E2E_TMP/state/viewer-token"
  chmod 600 "$E2E_TMP/state/viewer-token"
  FLAGS+=(--viewer-token-file "$E2E_TMP/state/viewer-token")
fi
start_daemon "${FLAGS[@]}"
# A daemon without browser login (no /whoami) can only be driven by a page with --auth none.
if [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$API/api/v1/whoami")" = 404 ]; then
  note "this daemon has no browser login (GET /api/v1/whoami: 404): the page runs against --auth none"
  stop_daemon
  start_daemon "${FLAGS[@]}" --auth none
  export WEB_NO_LOGIN=1
fi

note "the daemon serves the dashboard: content types, ETag revalidation, gzip"
hdr=$(curl -sS -D - -o /dev/null "$API/")
assert_contains "$hdr" "Content-Type: text/html" "/ is HTML"
etag=$(awk 'tolower($1)=="etag:" {print $2}' <<<"$hdr" | tr -d '\r')
[ -n "$etag" ] || fail "no ETag on /"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$API/")" 304 "revalidation of /"
js=$(grep -o '/assets/app-[A-Z0-9]*\.js' <<<"$(curl -s "$API/")")
[ -n "$js" ] || fail "index.html names no app script"
hdr=$(curl -sS -D - -o "$E2E_TMP/app.js.gz" -H 'Accept-Encoding: gzip' "$API$js")
assert_contains "$hdr" "Content-Type: text/javascript" "JS content type"
assert_contains "$hdr" "Content-Encoding: gzip" "JS gzipped"
assert_contains "$hdr" "immutable" "hashed asset cached for good"
gzip -t "$E2E_TMP/app.js.gz" || fail "the gzipped script is not gzip"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$API/assets/nope.js")" 404 "unknown asset"

note "headless Chromium: pages, axe-core, session create/ssh/delete, live alert"
WEB_BASE=$API WEB_TOKEN=$TOKEN WEB_VIEWER_TOKEN=$VIEWER_TOKEN WEB_ARTIFACTS=$ART WEB_MODE=pages WEB_USER=$WUSER WEB_KEY=$KEY \
  WEB_GATEWAY_PORT=$GW_PORT WEB_FORCE_HOT=$FORCE_HOT WEB_ALERT_RULE=$HOT_RULE CHROMIUM=$CHROMIUM \
  timeout 400 node "$ROOT/tests/web/dashboard.mjs" || fail "dashboard checks (above)"
if [ "${WEB_NO_LOGIN:-0}" = 1 ]; then
  note "the page against the login and event-stream contract (those routes answered by the test; the rest by the daemon)"
  WEB_BASE=$API WEB_ARTIFACTS=$ART WEB_MODE=contract CHROMIUM=$CHROMIUM \
    timeout 200 node "$ROOT/tests/web/dashboard.mjs" || fail "contract checks (above)"
fi
SID=$(<"$ART/session-id")
[ -n "$SID" ] && SIDS+=("$SID")
api GET "/api/v1/sessions/$SID"
assert_eq "$(jb .status)" ended "the session deleted from the page"

note "overview with 64 GPUs x 7 MIG slices"
stop_daemon
"$PY" - "$E2E_TMP/big.json" <<'PY'
import json, sys
gpus = []
for i in range(64):
    gpus.append({"model": "A100-SXM4-80GB", "uuid": "GPU-%08x-0000-4000-8000-%012x" % (i, i), "mig_mode": True,
                 "mig_instances": [{"profile": "1g.10gb", "start": s, "compute_instances": 1} for s in range(7)],
                 "telemetry": {"temperature": 40 + i % 30, "power_usage_mw": 90000, "power_limit_mw": 400000}})
json.dump({"driver_version": "550.54.15", "cuda_driver_version": 12040, "gpus": gpus}, open(sys.argv[1], "w"))
PY
export SANDMAN_NVML_SIM_CONFIG=$E2E_TMP/big.json
rm -f "$SANDMAN_NVML_SIM_CONFIG.state"
restart_daemon
WEB_BASE=$API WEB_TOKEN=$TOKEN WEB_ARTIFACTS=$ART WEB_MODE=perf WEB_WANT_GPUS=64 CHROMIUM=$CHROMIUM \
  timeout 200 node "$ROOT/tests/web/dashboard.mjs" || fail "overview 64x7 (above)"
note "without assets (--web-root elsewhere), / says so plainly and the API serves on"
stop_daemon
start_daemon "${FLAGS[@]}" --web-root "$E2E_TMP/no-such-dir"
assert_eq "$(curl -s -o "$E2E_TMP/missing.html" -w '%{http_code}' "$API/")" 503 "/ without assets"
assert_contains "$(cat "$E2E_TMP/missing.html")" "dashboard is not installed" "/ says what is missing"
assert_contains "$(cat "$E2E_TMP/missing.html")" "$E2E_TMP/no-such-dir" "/ names where it looked"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "$API/healthz")" 200 "the API without assets"
note "figures: $(cat "$ART"/figures-*.json | tr -d '\n ')"
note "artifacts in $ART"

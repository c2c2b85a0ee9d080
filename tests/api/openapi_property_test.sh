#!/usr/bin/env bash
# The live daemon against its own /openapi.json: tests/api/openapi_check.py drives every
# documented operation with requests generated from the document's schemas (valid ones and
# near-misses) and fails on any answer the document does not allow. The daemon runs like the
# e2e suites' (Docker backend, the NVML simulator's mixed host, static MIG), in a private temp
# dir that goes, with every container it made, whatever happens.
#
# Every operation here has a catch-all "default" response, so --strict-status: a status only
# "default" covers counts as undocumented.
#
# First the checker proves it can fail here: a copy of the served document with an
# undocumented status and a wrong field type must be reported. Then the real run, and a
# short one of the writes with the viewer token (each answer, a 403, must be documented).
#
# Usage: openapi_property_test.sh <path-to-sandman>
# Knobs: SANDMAN_API_SPEC=FILE checks that document instead of the served one;
#        API_CHECK_EXAMPLES (50), API_CHECK_SEED (0), API_CHECK_BUDGET (seconds, 60).
source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
e2e_init "$@"
"$PY" -c 'import hypothesis, jsonschema' 2>/dev/null ||
  fail "python3-hypothesis and python3-jsonschema are missing (scripts/lib.sh installs them)"

use_sim_fixture mixed-host.json
VIEWER_TOKEN_FILE=$E2E_TMP/state/viewer-token
(umask 077 && echo "viewer-$RUN-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" >"$VIEWER_TOKEN_FILE")
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static --telemetry-interval 1s \
  --viewer-token-file "$VIEWER_TOKEN_FILE"

SPEC=$E2E_TMP/openapi.json
if [ -n "${SANDMAN_API_SPEC:-}" ]; then
  note "the document: $SANDMAN_API_SPEC (SANDMAN_API_SPEC)"
  cp "$SANDMAN_API_SPEC" "$SPEC" || fail "cannot read $SANDMAN_API_SPEC"
else
  api GET /openapi.json
  assert_code 200 "GET /openapi.json"
  printf '%s' "$BODY" >"$SPEC"
  note "the document: GET /openapi.json ($(jq '.paths | length' "$SPEC") paths)"
fi
jq -e '.openapi and .paths' "$SPEC" >/dev/null || fail "the document has no openapi/paths"

note "the checker fails on a document that is wrong about this daemon"
# /healthz documented with 201 instead of 200; /readyz's status documented as an integer.
WRONG=$E2E_TMP/wrong.json
jq '.paths["/healthz"].get.responses = {"201": {"description": "wrong on purpose",
      "content": {"application/json": {"schema": {"type": "object"}}}}}
    | .paths["/readyz"].get.responses["200"] = {"description": "wrong on purpose",
      "content": {"application/json": {"schema": {"type": "object", "required": ["status"],
        "properties": {"status": {"type": "integer"}}}}}}
    | .paths["/readyz"].get.security = []' "$SPEC" >"$WRONG" || fail "jq could not build the wrong document"
out=$("$PY" "$HERE/openapi_check.py" --base-url "$API" --token-file "$TOKEN_FILE" --spec "$WRONG" \
  --only ' GET /(healthz|readyz)$' --examples 5 --time-budget 10 2>&1)
rc=$?
[ "$rc" = 1 ] || fail "the checker exited $rc on a wrong document (expected 1): $out"
assert_contains "$out" "undocumented-status: GET /healthz" "an undocumented status is reported"
assert_contains "$out" "answered 200, which the document does not list" "the status is named"
assert_contains "$out" "response-schema: GET /readyz" "a wrong field type is reported"
assert_contains "$out" "body at /status" "the field is named"
assert_contains "$out" "repeat:   curl" "with a curl line that repeats it"

note "the daemon against its document"
t0=$(now)
"$PY" "$HERE/openapi_check.py" --base-url "$API" --token-file "$TOKEN_FILE" --spec "$SPEC" \
  --examples "${API_CHECK_EXAMPLES:-50}" --seed "${API_CHECK_SEED:-0}" \
  --time-budget "${API_CHECK_BUDGET:-60}" --json "$E2E_TMP/report.json" -v --strict-status
rc=$?
note "checker: rc=$rc in $(fsub "$(now)" "$t0") s"
kill -0 "$DPID" 2>/dev/null || fail "the daemon died during the check"

note "the writes with the viewer token (403s: no 2xx is expected here)"
"$PY" "$HERE/openapi_check.py" --base-url "$API" --token-file "$VIEWER_TOKEN_FILE" --spec "$SPEC" \
  --only ' (POST|PUT|PATCH|DELETE) ' --no-auth-check --strict-status --examples 5 --seed "${API_CHECK_SEED:-0}" --time-budget 20
vrc=$?
kill -0 "$DPID" 2>/dev/null || fail "the daemon died during the viewer's check"
api GET /healthz
assert_code 200 "the daemon still answers after the check"
[ "$rc" = 0 ] && [ "$vrc" = 0 ] || fail "the daemon contradicts its /openapi.json (see CONTRADICTIONS above)"
echo "PASS"

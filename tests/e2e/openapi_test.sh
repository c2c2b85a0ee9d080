#!/usr/bin/env bash
# e2e: GET /openapi.json on a real daemon (Docker, NVML simulator, a session, a team, a budget): an
# OpenAPI 3.1 document that tools can trust. openapi_routes_check.py checks its structure (security
# schemes, tags, camelCase operationIds, every $ref resolving, every schema valid JSON Schema
# 2020-12), that no route is marked undocumented, and that every path and method it lists answers
# on the live daemon (no 404 "no route", no 405) with 2xx bodies that validate against their
# schemas; valid writes answer what their schemas say; unknown body fields are refused where the
# schema says so; the viewer token is refused exactly the admin operations. The daemon logs no
# "openapi:" warning (undocumented routes, docs naming no route).
# Usage: openapi_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
"$PY" -c 'import jsonschema' 2>/dev/null || fail "python3-jsonschema is missing (scripts/lib.sh installs it)"

use_sim_fixture mixed-host.json
VIEWER_FILE=$E2E_TMP/viewer-token
(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$VIEWER_FILE")
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s --viewer-token-file "$VIEWER_FILE"

note "some data, so that listings are not all empty"
mkuser U oa
mkuser U2 ob  # openapi_routes_check.py creates its session
create_session "$U"
api POST /api/v1/teams '{"name":"e2e-team"}'
assert_code 201 "a team"
api POST /api/v1/projects '{"name":"e2e-proj","team":"e2e-team"}'
assert_code 201 "a project"
api PUT /api/v1/budgets '{"scope":"team","name":"e2e-team","usd_per_month":100}'
assert_code 200 "a budget"
for _ in $(seq 50); do
  api GET /api/v1/metrics/realtime
  [ "$CODE" = 200 ] && break
  sleep 0.2
done
assert_code 200 "a telemetry sample"

note "the document"
api GET /openapi.json
assert_code 200 "GET /openapi.json"
assert_eq "$(jb .openapi)" "3.1.0" "the OpenAPI version"
note "$(jb '.paths | length') paths, $(jb '[.paths[] | keys[]] | length') operations, ${#BODY} bytes"
api_curl "$TOKEN" GET /openapi.json -H 'Accept: text/csv'
assert_code 200 "the document is JSON whatever the Accept"

note "structure, and every path and method against the daemon"
out=$("$PY" "$(dirname "${BASH_SOURCE[0]}")/openapi_routes_check.py" "$API" "$TOKEN" "$U" "$U2" "$(<"$VIEWER_FILE")" 2>&1)
rc=$?
echo "$out"
assert_eq "$rc" 0 "openapi_routes_check.py"

note "no start-up warning about the route table's docs"
assert_not_contains "$(cat "$DAEMON_LOG")" "openapi:" "the daemon log"
echo "PASS openapi_test"

#!/usr/bin/env bash
# e2e: GET /openapi.json on a real daemon (Docker, NVML simulator, a session, a team, a budget): an
# OpenAPI 3.1 document that tools can trust. openapi_check.py checks its structure (security
# schemes, tags, camelCase operationIds, every $ref resolving, every schema valid JSON Schema
# 2020-12), that no route is marked undocumented, and that every path and method it lists answers
# on the live daemon (no 404 "no route", no 405) with 2xx bodies that validate against their
# schemas. The daemon logs no "openapi:" warning (undocumented routes, docs naming no route).
# Usage: openapi_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"
"$PY" -c 'import jsonschema' 2>/dev/null || fail "python3-jsonschema is missing (scripts/lib.sh installs it)"

use_sim_fixture mixed-host.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --telemetry-interval 1s

note "some data, so that listings are not all empty"
mkuser U oa
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
out=$("$PY" "$(dirname "${BASH_SOURCE[0]}")/openapi_check.py" "$API" "$TOKEN" 2>&1)
rc=$?
echo "$out"
assert_eq "$rc" 0 "openapi_check.py"

note "no start-up warning about the route table's docs"
assert_not_contains "$(cat "$DAEMON_LOG")" "openapi:" "the daemon log"
echo "PASS openapi_test"

#!/usr/bin/env bash
# e2e: who pays and what it cost. Teams, projects and a user's membership through the API and
# the CLI; a session names its project (or gets the user's first; a project the user is not in
# is a 400); a GPU slice held on the NVML simulator is booked into the ledger when it ends and
# accrued while it runs; GET /api/v1/cost answers JSON and RFC 4180 CSV (read back with
# Python's csv module); a price change applies from its time on and never to the past.
# Usage: cost_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

CONN=(--server "$API" --token-file "$TOKEN_FILE")
use_sim_fixture a100-40gb-mig-empty.json
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic --gpu-hourly-rates A100=2.80

note "the catalog ships with the binary; A100=2.80 overrides its A100 list price"
api GET /api/v1/cost/catalog
assert_code 200 "GET /cost/catalog"
assert_eq "$(jb '.models[] | select(.key == "A100-SXM4-40GB") | .usd_per_hour')" 2.8 "overridden A100 price"
assert_eq "$(jb '.models[] | select(.key == "A100-SXM4-40GB") | .profiles[] | select(.name == "3g.20gb") | .memory_slices')" 4 \
  "3g.20gb takes 4 memory slices"
assert_eq "$(jb '[.models[] | select(.key | test("^(A30|H100|H200)"))] | length')" 6 "A30, H100 and H200 variants"

note "teams and projects: names validated at the edge"
api POST /api/v1/teams '{"name":"Bad Team"}'
assert_code 400 "team name with a space and capitals"
assert_error_json "bad team name"
api POST /api/v1/teams '{"name":"lab"}'
assert_code 201 "POST /teams"
api POST /api/v1/teams '{"name":"lab"}'
assert_code 409 "the same team twice"
api POST /api/v1/projects '{"name":"llm-1","team":"nolab"}'
assert_code 400 "a project of an unknown team"
api POST /api/v1/projects '{"name":"llm-1","team":"lab"}'
assert_code 201 "POST /projects"
out=$(timeout 30 "$SANDMAN" projects add vision "${CONN[@]}" 2>&1) || fail "sandman projects add: $out"
out=$(timeout 30 "$SANDMAN" teams ls "${CONN[@]}" 2>&1) || fail "sandman teams ls: $out"
assert_contains "$out" "lab" "sandman teams ls"

mkuser U1 p
api PUT "/api/v1/users/$U1" '{"team":"lab","projects":["nope"]}'
assert_code 400 "a user in an unknown project"
out=$(timeout 30 "$SANDMAN" users set "$U1" --team lab --project llm-1 --project vision "${CONN[@]}" 2>&1) ||
  fail "sandman users set: $out"
api GET "/api/v1/users/$U1"
assert_eq "$(jb '.projects | join(",")')" "llm-1,vision" "the user's projects, in order"

note "a session names one of its user's projects, or gets the first"
mkuser U2 q
api POST /api/v1/sessions "{\"user_id\":\"$U1\",\"project\":\"other\",\"mig_profile\":\"1g.5gb\"}"
assert_code 400 "a project the user is not in"
assert_contains "$BODY" "not in project other" "the 400 says why"
api POST /api/v1/sessions "{\"user_id\":\"$U1\",\"project\":\"Bad,Name\"}"
assert_code 400 "a malformed project name"
create_session "$U1" '"mig_profile":"1g.5gb","ttl_minutes":10'
S1=$SID
assert_eq "$(jb .team)" lab "team of the session"
assert_eq "$(jb .project)" llm-1 "default project: the user's first"
api PUT "/api/v1/users/$U2" '{"projects":["vision"]}'
create_session "$U2" '"mig_profile":"2g.10gb","ttl_minutes":10,"project":"vision"'
S2=$SID
assert_eq "$(jb .project)" vision "named project"
assert_eq "$(jb .team)" null "no team of its own, and vision has none"

note "running sessions accrue at query time"
sleep 2
api GET "/api/v1/cost?group_by=project&step=day"
assert_code 200 "GET /cost while sessions run"
assert_eq "$(jb .running_sessions)" 2 "running sessions accrued"
fle 0.000001 "$(jb '.totals[] | select(.project == "vision") | .cost_usd')" || fail "no accrued cost for vision: $BODY"

api DELETE "/api/v1/sessions/$S1"
assert_code 200 "DELETE S1"
api DELETE "/api/v1/sessions/$S2"
assert_code 200 "DELETE S2"

note "the ledger: booked at the end, priced by share (1g.5gb = 1/7, 2g.10gb = 2/7 of 2.80/h)"
api GET "/api/v1/cost?group_by=session&step=day"
assert_code 200 "GET /cost by session"
assert_eq "$(jb .running_sessions)" 0 "nothing running"
for pair in "$S1:0.40" "$S2:0.80"; do
  sid=${pair%%:*} rate=${pair##*:}
  cost=$(jb ".totals[] | select(.session_id == \"$sid\") | .cost_usd")
  held=$(jb ".totals[] | select(.session_id == \"$sid\") | .held_hours")
  [ -n "$cost" ] && [ -n "$held" ] || fail "no ledger for $sid: $BODY"
  awk -v c="$cost" -v h="$held" -v r="$rate" 'BEGIN{d=c-h*r; if(d<0)d=-d; exit !(h > 0 && d < 0.000002)}' ||
    fail "$sid cost $cost for $held h, expected $rate/h"
done
JSON=$BODY

note "CSV (Accept: text/csv) read back with a CSV parser matches the JSON"
api_curl "$TOKEN" GET "/api/v1/cost?group_by=session&step=day" -H 'Accept: text/csv'
assert_code 200 "GET /cost as CSV"
printf '%s' "$BODY" >"$E2E_TMP/cost.csv"
printf '%s' "$JSON" >"$E2E_TMP/cost.json"
"$PY" - "$E2E_TMP/cost.csv" "$E2E_TMP/cost.json" <<'PYEOF' || fail "CSV does not match the JSON"
import csv, json, sys
raw = open(sys.argv[1], newline="").read()
assert raw.endswith("\r\n"), "RFC 4180 lines end in CRLF"
rows = list(csv.DictReader(open(sys.argv[1], newline=""), strict=True))
assert rows, "no rows"
assert list(rows[0].keys()) == ["bucket_start", "session_id", "cost_usd", "idle_cost_usd", "held_hours", "idle_hours"], rows[0].keys()
want = {(r["bucket_start"], r["session_id"]): r for r in json.load(open(sys.argv[2]))["rows"]}
assert len(want) == len(rows), (len(want), len(rows))
for r in rows:
    j = want[(r["bucket_start"], r["session_id"])]
    assert abs(float(r["cost_usd"]) - j["cost_usd"]) < 1e-6, (r, j)
    assert abs(float(r["held_hours"]) - j["held_hours"]) < 1e-4, (r, j)
PYEOF
api GET "/api/v1/cost?group_by=nope"
assert_code 400 "unknown group_by"
api GET "/api/v1/cost?format=xml"
assert_code 400 "unknown format"
api GET "/api/v1/cost?step=year"
assert_code 400 "unknown step"
api GET "/api/v1/cost?from=2026-02-01&to=2026-01-01"
assert_code 400 "from after to"

note "a price change applies from its time on, never to the past"
api PUT /api/v1/cost/prices/A100-SXM4-40GB '{"usd_per_hour":3.5,"effective_from":"2020-01-01T00:00:00Z"}'
assert_code 400 "a price in the past"
api PUT /api/v1/cost/prices/A100-SXM4-40GB '{"usd_per_hour":3.5}'
assert_code 200 "a new price from now"
api GET /api/v1/cost/prices
assert_eq "$(jb '[.[] | select(.model == "A100-SXM4-40GB")] | length')" 2 "two A100-40GB prices in the history"
api GET "/api/v1/cost?group_by=session&step=day"
assert_eq "$(jb ".totals[] | select(.session_id == \"$S1\") | .cost_usd")" \
  "$(jq -r ".totals[] | select(.session_id == \"$S1\") | .cost_usd" <<<"$JSON")" "S1's booked cost unchanged"

note "sandman cost prints a table; the ledger survives a restart"
stop_daemon
restart_daemon
out=$(timeout 30 "$SANDMAN" cost --group-by team "${CONN[@]}" 2>&1) || fail "sandman cost: $out"
assert_contains "$out" "lab" "sandman cost lists the team"
assert_contains "$out" "TOTAL" "sandman cost prints a total"

note "Prometheus: cost counters per payer"
metrics=$(curl -fsS --max-time 10 "$API/metrics") || fail "GET /metrics"
line=$(grep -E '^sandman_cost_usd_total\{' <<<"$metrics" | grep "user_id=\"$U1\"") || fail "no sandman_cost_usd_total for $U1"
assert_match "$line" "team=\"lab\",project=\"llm-1\",gpu_model=\"A100-SXM4-40GB\"\} " "cost series labels"
grep -qE '^sandman_idle_cost_usd_total\{' <<<"$metrics" || fail "no sandman_idle_cost_usd_total"

note "budgets: alerts through the engine, and with block a 402 for creates and extensions, never a stop"
api PUT /api/v1/budgets '{"scope":"team","name":"Lab","usd_per_month":1}'
assert_code 400 "a budget for a malformed name"
api PUT /api/v1/budgets '{"scope":"team","name":"lab","usd_per_month":0}'
assert_code 400 "a zero budget"
api PUT /api/v1/budgets '{"scope":"team","name":"lab","usd_per_month":0.000001}'
assert_code 200 "PUT /budgets"
assert_eq "$(jb .budget)" team/lab "budget label"
fle 1 "$(jb .used_ratio)" || fail "lab's tiny budget is not spent: $BODY"
stop_daemon
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode dynamic --gpu-hourly-rates A100=2.80 \
  --budget-enforcement block --telemetry-interval 1s
api POST /api/v1/sessions "{\"user_id\":\"$U1\",\"mig_profile\":\"1g.5gb\"}"
assert_code 402 "a create paid by a spent budget"
assert_eq "$(jb .code)" over_budget "402 code"
assert_eq "$(jb .budget.budget)" team/lab "the 402 names the budget"
fle 0.000001 "$(jb .budget.used_usd)" || fail "the 402 carries the spend: $BODY"
assert_eq "$(jb .budget.limit_usd)" 1e-06 "the 402 carries the limit"
create_session "$U2" '"mig_profile":"1g.5gb","ttl_minutes":10'
S3=$SID
api PUT /api/v1/budgets '{"scope":"project","name":"vision","usd_per_month":0.000001}'
assert_code 200 "a budget for vision"
sleep 1
api PATCH "/api/v1/sessions/$S3" '{"ttl_minutes":30}'
assert_code 402 "an extension paid by a spent budget"
api PATCH "/api/v1/sessions/$S3" '{"ttl_minutes":5}'
assert_code 200 "shortening is always allowed"
api GET "/api/v1/sessions/$S3"
assert_eq "$(jb .status)" running "a session over budget keeps running"
for i in $(seq 60); do
  api GET "/api/v1/alerts?state=firing"
  [ "$(jb '[.alerts[] | select(.rule == "BudgetSpent")] | length')" -ge 2 ] && break
  sleep 0.5
done
assert_eq "$(jb '[.alerts[] | select(.rule == "BudgetSpent") | .labels.budget] | sort | join(",")')" \
  "project/vision,team/lab" "BudgetSpent fires for both budgets"
api GET /api/v1/budgets
assert_eq "$(jb .enforcement)" block "enforcement shown"
metrics=$(curl -fsS --max-time 10 "$API/metrics") || fail "GET /metrics"
grep -qE '^sandman_budget_used_ratio\{budget="team/lab"\} ' <<<"$metrics" || fail "no sandman_budget_used_ratio for team/lab"
out=$(timeout 30 "$SANDMAN" budgets ls "${CONN[@]}" 2>&1) || fail "sandman budgets ls: $out"
assert_contains "$out" "project/vision" "sandman budgets ls"
api DELETE "/api/v1/sessions/$S3"
assert_code 200 "DELETE S3"
note "cost: ok"

#!/usr/bin/env bash
# e2e: /metrics as Prometheus sees it. The daemon runs on the NVML simulator (mixed-host.json,
# static MIG); its /metrics is promtool-clean and open without a token, carries the seed's names
# with dcgm-style labels and the holder of each slice, and every metric the shipped Grafana
# dashboard and alert rules read. Debian's real `prometheus` scrapes it on loopback (with the
# shipped rule file loaded) and a temperature forced in the simulator comes back through its
# query API. --metrics-auth puts /metrics behind the token.
# Usage: prometheus_test.sh <path-to-sandman>
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
e2e_init "$@"

for t in promtool prometheus "$PY"; do
  command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed (apt-get install prometheus python3)"
done
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY=$ROOT/deploy
RTX=GPU-7c8d9e0f-4d5e-4f60-9b1c-3d4e5f607182  # mixed-host.json's MIG-off GPU (index 3)

use_sim_fixture mixed-host.json

# set_temperature GPU_INDEX CELSIUS: what the simulator reports from its next read on.
set_temperature() {
  "$PY" - "$SANDMAN_NVML_SIM_CONFIG" "$1" "$2" <<'PY'
import json, os, sys
path, index, temp = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = json.load(open(path))
c["gpus"][index]["telemetry"]["temperature"] = temp
json.dump(c, open(path + ".tmp", "w"))
os.replace(path + ".tmp", path)
PY
}

# scrape [TOKEN]: GET /metrics into METRICS (CODE/BODY as api_as sets them).
scrape() {
  api_curl "${1:-}" GET /metrics -D "$E2E_TMP/metrics.headers"
  METRICS=$BODY
}

# families: every metric family /metrics declares (# TYPE lines), one per line.
families() { awk '$1 == "#" && $2 == "TYPE" {print $3}' <<<"$METRICS" | sort -u; }

# promq QUERY: the result vector of an instant query against our Prometheus, as JSON.
promq() {
  curl -fsS --max-time 5 --data-urlencode "query=$1" "$PROM/api/v1/query" | jq -c '.data.result'
}

note "daemon on the simulator; sessions hold the 3g.40gb instance and the whole RTX"
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static --telemetry-interval 1s
mkuser U1 pm
create_session "$U1" '"mig_profile":"3g.40gb","ttl_minutes":30'
SID_MIG=$SID
MIG_UUID=$(jb .gpu_uuid)
mkuser U2 pw
create_session "$U2" '"mig_profile":"whole","ttl_minutes":30'
SID_WHOLE=$SID
assert_eq "$(jb .gpu_uuid)" "$RTX" "the whole-GPU session holds the RTX"

note "/metrics: open without a token, the exposition content type, promtool-clean"
for i in $(seq 50); do  # the sampler attributes the new holders on its next cycle
  scrape ""
  grep -q "session_id=\"$SID_MIG\"" <<<"$METRICS" && grep -q "session_id=\"$SID_WHOLE\"" <<<"$METRICS" && break
  sleep 0.2
done
assert_code 200 "GET /metrics without a token"
assert_contains "$(tr -d '\r' <"$E2E_TMP/metrics.headers" | grep -i '^content-type:')" \
  "text/plain; version=0.0.4; charset=utf-8" "content type of /metrics"
printf '%s' "$METRICS" >"$E2E_TMP/metrics.txt"
lint=$(promtool check metrics <"$E2E_TMP/metrics.txt" 2>&1) || fail "promtool check metrics: $lint"

note "seed names with dcgm-style labels, and the holders of the slices"
for name in gpu_temperature gpu_utilization mig_allocation_ratio gpu_hourly_cost gpu_power_usage_watts \
  gpu_memory_used_bytes gpu_memory_total_bytes sandman_sessions sandman_session_create_seconds_bucket \
  sandman_http_request_duration_seconds_bucket sandman_gateway_connections sandman_reconcile_repairs_total; do
  grep -qE "^${name}(\{| )" <<<"$METRICS" || fail "metric $name missing from /metrics"
done
temps=$(grep -cE '^gpu_temperature\{' <<<"$METRICS")
assert_eq "$temps" 4 "gpu_temperature series (one per physical GPU)"
line=$(grep -E '^gpu_temperature\{' <<<"$METRICS" | grep "UUID=\"$RTX\"") || fail "no gpu_temperature for $RTX"
assert_match "$line" "gpu=\"3\".*model_name=\"[^\"]*RTX[ -]4090\".*Hostname=\"[^\"]+\".*session_id=\"$SID_WHOLE\",user_id=\"$U2\"\} 33\$" \
  "the RTX temperature series"
cost=$(grep -E '^gpu_hourly_cost\{' <<<"$METRICS" | grep "session_id=\"$SID_MIG\"") || fail "no gpu_hourly_cost for $SID_MIG"
assert_match "$cost" "GPU_I_PROFILE=\"3g.40gb\",GPU_I_ID=\"[0-9]+\",mig_uuid=\"$MIG_UUID\",session_id=\"$SID_MIG\",user_id=\"$U1\"\} " \
  "cost series of the held 3g.40gb"
# Built-in list price of an A100 (2.00/h): a 3-of-7 slice costs 6/7.
awk -v v="${cost##* }" 'BEGIN{exit !(v > 0.857 && v < 0.858)}' || fail "3g.40gb hourly cost ${cost##* }, expected 6/7"
ratio=$(grep -E '^mig_allocation_ratio\{gpu="0",' <<<"$METRICS") || fail "no mig_allocation_ratio for GPU 0"
awk -v v="${ratio##* }" 'BEGIN{exit !(v > 0.428 && v < 0.429)}' || fail "GPU 0 allocation ${ratio##* }, expected 3/7"
grep -qE '^mig_allocation_ratio\{gpu="3",.*\} 1$' <<<"$METRICS" || fail "the held whole RTX is not at allocation 1"
grep -qE '^sandman_sessions\{status="running"\} 2$' <<<"$METRICS" || fail "sandman_sessions running != 2"
grep -qE '^sandman_session_create_seconds_count 2$' <<<"$METRICS" || fail "two creates not in the create histogram"

note "a budget, so the dashboard's Cost row has its sandman_budget_used_ratio series"
api PUT /api/v1/budgets '{"scope":"team","name":"lab","usd_per_month":100}'
assert_code 200 "PUT /budgets"
METRICS=$(curl -fsS --max-time 10 "$API/metrics") || fail "GET /metrics after the budget"

note "every metric the Grafana dashboard and the alert rules read is exported"
used=$("$PY" "$DEPLOY/promql-names.py" "$DEPLOY/grafana/sandman-dashboard.json" "$DEPLOY/rules/sandman-alerts.yml") ||
  fail "cannot read metric names from deploy/"
[ -n "$used" ] || fail "no metric names found in deploy/"
exported=$(families)
for n in $used; do
  base=$n
  case "$n" in *_bucket | *_count | *_sum) base=${n%_*} ;; esac
  grep -qxF "$n" <<<"$exported" || { grep -qxF "$base" <<<"$exported" && grep -q "^# TYPE $base histogram" <<<"$METRICS"; } ||
    fail "deploy/ uses $n, which /metrics does not export"
done

note "real Prometheus scrapes the daemon every second, with the shipped rules loaded"
PROM_PORT=$(free_port) || fail "no free port for Prometheus"
while [ "$PROM_PORT" = "$API_PORT" ] || [ "$PROM_PORT" = "$GW_PORT" ]; do PROM_PORT=$(free_port); done
PROM=http://127.0.0.1:$PROM_PORT
cat >"$E2E_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $DEPLOY/rules/sandman-alerts.yml
scrape_configs:
  - job_name: sandman
    static_configs:
      - targets: ["127.0.0.1:$API_PORT"]
EOF
promtool check config "$E2E_TMP/prometheus.yml" >/dev/null 2>&1 || fail "generated Prometheus config does not check"
prometheus --config.file="$E2E_TMP/prometheus.yml" --storage.tsdb.path="$E2E_TMP/prom-data" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$E2E_TMP/prometheus.log" 2>&1 &
PROM_PID=$!
BG_PIDS+=("$PROM_PID")  # the lib's trap kills it, whatever happens
for i in $(seq 100); do
  curl -fsS -o /dev/null --max-time 2 "$PROM/-/ready" 2>/dev/null && break
  kill -0 "$PROM_PID" 2>/dev/null || { tail -20 "$E2E_TMP/prometheus.log"; fail "prometheus exited during start-up"; }
  sleep 0.2
done
curl -fsS -o /dev/null "$PROM/-/ready" || fail "prometheus never became ready on $PROM"
for i in $(seq 60); do
  v=$(promq "gpu_temperature{UUID=\"$RTX\"}" | jq -r '.[0].value[1] // empty')
  [ "$v" = 33 ] && break
  sleep 0.5
done
assert_eq "${v:-none}" 33 "the RTX temperature read through Prometheus"
health=$(curl -fsS "$PROM/api/v1/targets" | jq -r '.data.activeTargets[0].health')
assert_eq "$health" up "Prometheus' view of the sandman target"
rules=$(curl -fsS "$PROM/api/v1/rules" | jq -r '[.data.groups[].rules[].name] | join(" ")')
assert_contains "$rules" "GPUOverheating" "rules Prometheus loaded"
n=$(promq "gpu_hourly_cost{session_id=\"$SID_MIG\",user_id=\"$U1\"}" | jq length)
assert_eq "$n" 1 "the held slice's cost series in Prometheus"

note "a temperature forced in the simulator comes back through Prometheus' query API"
set_temperature 3 91
t0=$(date +%s)
for i in $(seq 60); do
  v=$(promq "gpu_temperature{UUID=\"$RTX\"}" | jq -r '.[0].value[1] // empty')
  [ "$v" = 91 ] && break
  sleep 0.5
done
assert_eq "${v:-none}" 91 "forced temperature seen by Prometheus within 30 s"
note "seen after $(($(date +%s) - t0)) s"
pending=$(curl -fsS "$PROM/api/v1/alerts" | jq -r '[.data.alerts[] | select(.labels.alertname == "GPUOverheating")] | length')
for i in $(seq 20); do
  [ "$pending" -ge 1 ] && break
  sleep 0.5
  pending=$(curl -fsS "$PROM/api/v1/alerts" | jq -r '[.data.alerts[] | select(.labels.alertname == "GPUOverheating")] | length')
done
[ "$pending" -ge 1 ] || fail "GPUOverheating is not pending in Prometheus at 91 °C"

note "--metrics-auth: /metrics wants the token; /api/v1/metrics always does"
api_curl "" GET /api/v1/metrics
assert_code 401 "GET /api/v1/metrics without a token"
api GET /api/v1/metrics
assert_code 200 "GET /api/v1/metrics with the token"
stop_daemon
# Through the environment, which works whatever form the flag takes on the command line.
export SANDMAN_METRICS_AUTH=true
start_daemon --gpu-backend nvml --nvml-library "$SIMLIB" --mig-mode static --telemetry-interval 1s
unset SANDMAN_METRICS_AUTH
scrape ""
assert_code 401 "GET /metrics without a token under --metrics-auth"
scrape "$TOKEN"
assert_code 200 "GET /metrics with the token under --metrics-auth"
assert_contains "$METRICS" "# TYPE gpu_temperature gauge" "/metrics with the token"
api DELETE "/api/v1/sessions?confirm=true"
stop_daemon
exit 0

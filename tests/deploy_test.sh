#!/usr/bin/env bash
# deploy/ stays consistent without a daemon: the Prometheus config and alert rules check with
# promtool, the rules' unit tests pass, the Grafana dashboard is valid JSON, and every metric
# the dashboard and the rules read is a family that the exporter declares
# (src/telemetry/metrics_exporter.cc). tests/e2e/prometheus_test.sh proves the same against a
# live /metrics. Usage: deploy_test.sh
set -eu -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
D=$ROOT/deploy
PY=/usr/bin/python3  # Debian's, not one earlier on PATH (scripts/lib.sh installs its packages)
fail() { echo "FAIL: $*"; exit 1; }
for t in promtool "$PY"; do
  command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed (apt-get install prometheus python3)"
done

promtool check config "$D/prometheus.yml" || fail "promtool check config deploy/prometheus.yml"
promtool check rules "$D/rules/sandman-alerts.yml" || fail "promtool check rules"
(cd "$D/rules" && promtool test rules sandman-alerts.test.yml) || fail "promtool test rules"
promtool check rules "$D/rules/sandman-cost.yml" || fail "promtool check rules (cost)"
(cd "$D/rules" && promtool test rules sandman-cost.test.yml) || fail "promtool test rules (cost)"
"$PY" -m json.tool "$D/grafana/sandman-dashboard.json" >/dev/null || fail "the dashboard is not valid JSON"

# Families the exporter declares: begin("name", MetricType::kX, ...).
declared=$(grep -hoE 'begin\("[a-z_:]+", MetricType::k[A-Za-z]+' "$ROOT/src/telemetry/metrics_exporter.cc" |
  sed -E 's/begin\("([a-z_:]+)", MetricType::k([A-Za-z]+)/\1 \2/')
[ -n "$declared" ] || fail "no metric families found in metrics_exporter.cc"
used=$("$PY" "$D/promql-names.py" "$D/grafana/sandman-dashboard.json" "$D/rules/sandman-alerts.yml" "$D/rules/sandman-cost.yml")
[ -n "$used" ] || fail "no metric names found in deploy/"
# Series the rule files record themselves (level:metric:operations) are theirs, not the exporter's.
recorded=$(grep -hoE '^ *- record: [A-Za-z_:0-9]+' "$D"/rules/*.yml | awk '{print $3}')
for n in $used; do
  awk -v n="$n" '$1 == n {f=1} END {exit !f}' <<<"$declared" && continue
  grep -qxF "$n" <<<"$recorded" && continue
  case "$n" in
    *_bucket | *_count | *_sum) awk -v n="${n%_*}" '$1 == n && $2 == "Histogram" {f=1} END {exit !f}' <<<"$declared" && continue ;;
  esac
  fail "deploy/ reads $n, which Sandman does not export"
done

# The extractor itself: it must see through aggregations, matchers and functions.
got=$("$PY" - "$D/promql-names.py" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("p", sys.argv[1]); p = importlib.util.module_from_spec(spec)
spec.loader.exec_module(p)
e = 'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="b c",y=~"$v"}[5m]))) / on(gpu) group_left b > 0 and c offset 5m'
print(" ".join(sorted(p.metric_names(e))), "|", " ".join(p.metric_names("label_values(gpu_temperature, Hostname)")))
PY
)
[ "$got" = "a_bucket b c | gpu_temperature" ] || fail "promql-names.py extracted '$got'"
echo "PASS: deploy_test.sh ($(wc -w <<<"$used") metric names, all exported)"

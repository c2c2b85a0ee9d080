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
for f in "$D"/grafana/*.json; do
  "$PY" -m json.tool "$f" >/dev/null || fail "$(basename "$f") is not valid JSON"
done

# Every dashboard expression parses as PromQL: each becomes a recording rule
# (Grafana's variables replaced by values of their kind) that promtool checks.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$tmp/dashboard-exprs.yml" "$D"/grafana/*.json <<'PY' || fail "could not collect the dashboards' expressions"
import json, re, sys
out, exprs = sys.argv[1], []
def walk(n):
    if isinstance(n, dict):
        for k, v in n.items():
            if k == "expr" and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(n, list):
        for i in n:
            walk(i)
for f in sys.argv[2:]:
    walk(json.load(open(f)))
with open(out, "w") as w:
    w.write("groups:\n  - name: dashboard-exprs\n    rules:\n")
    for i, e in enumerate(exprs):
        e = re.sub(r"\$__(rate_)?interval", "5m", e)
        e = re.sub(r"\$\{?[A-Za-z_]\w*\}?", ".*", e)
        w.write("      - record: dashboard:expr_%d\n        expr: %s\n" % (i, json.dumps(e)))
print(len(exprs), "dashboard expressions", file=sys.stderr)
PY
promtool check rules "$tmp/dashboard-exprs.yml" >/dev/null || {
  promtool check rules "$tmp/dashboard-exprs.yml" || true; fail "a dashboard expression does not parse as PromQL"; }

# Families the exporter declares: begin("name", MetricType::kX, ...).
declared=$(grep -hoE 'begin\("[a-z_:]+", MetricType::k[A-Za-z]+' "$ROOT/src/telemetry/metrics_exporter.cc" |
  sed -E 's/begin\("([a-z_:]+)", MetricType::k([A-Za-z]+)/\1 \2/')
[ -n "$declared" ] || fail "no metric families found in metrics_exporter.cc"
used=$("$PY" "$D/promql-names.py" "$D"/grafana/*.json "$D/rules/sandman-alerts.yml" "$D/rules/sandman-cost.yml")
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

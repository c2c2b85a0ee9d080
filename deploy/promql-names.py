#!/usr/bin/env python3
"""Prints the metric names that PromQL expressions in Grafana dashboards (.json)
and Prometheus rule files (.yml) read, one per line, sorted.

Used by the tests to prove the shipped dashboard and alerts only use metrics
Sandman exports; handy for checking a customised dashboard the same way:
  deploy/promql-names.py deploy/grafana/sandman-dashboard.json deploy/rules/sandman-alerts.yml
"""
import json
import re
import sys

# PromQL words that look like names but are not metrics.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
            "group_left", "group_right", "inf", "nan", "atan2",
            # aggregations may be written `sum by (x) (...)`, name first
            "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
            "bottomk", "topk", "quantile"}


def exprs_in_dashboard(node):
    """Every target expr and every query variable's query, anywhere in the JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                yield value
            else:
                yield from exprs_in_dashboard(value)
    elif isinstance(node, list):
        for item in node:
            yield from exprs_in_dashboard(item)


def exprs_in_rules(text):
    # Sandman's rule files keep each expr on one line (`expr: ...`).
    for m in re.finditer(r"^\s*expr:\s*(.+?)\s*$", text, re.M):
        yield m.group(1).strip("'\"") if m.group(1)[:1] in "'\"" else m.group(1)


def metric_names(expr):
    # Grafana's label_values(METRIC, LABEL) names a metric as its first argument.
    lv = re.fullmatch(r"\s*label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,.*\)\s*", expr)
    if lv:
        return {lv.group(1)}
    if expr.strip() in ("prometheus",):  # a datasource variable's plugin id
        return set()
    e = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)           # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                          # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                         # range / subquery durations
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", e)
    e = re.sub(r"\$\{?[A-Za-z_]\w*\}?", "", e)               # Grafana variables ($__rate_interval)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", e):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def main(paths):
    names = set()
    for path in paths:
        text = open(path, encoding="utf-8").read()
        exprs = exprs_in_dashboard(json.loads(text)) if path.endswith(".json") else exprs_in_rules(text)
        for expr in exprs:
            names |= metric_names(expr)
    for n in sorted(names):
        print(n)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: promql-names.py FILE.json|FILE.yml ...")
    main(sys.argv[1:])

#!/usr/bin/env bash
# `make test-rules`: the alert rules parse, every alert has unit tests and a runbook section, the
# promtool unit tests pass, and the chart's copy of the rules is byte-identical to the source.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rules=deploy/prometheus/fedgpu-alerts.yaml
chart_copy=charts/fedgpu/files/fedgpu-alerts.yaml
runbooks=docs/runbooks.md
promtool=bin/promtool
failed=0
fail() { echo "FAIL: $*" >&2; failed=1; }

[[ -x $promtool ]] || { echo "FAIL: $promtool is missing: run 'make tools'" >&2; exit 1; }

# 1. One source of truth for the PrometheusRule the chart renders.
if ! cmp -s "$rules" "$chart_copy"; then
  diff -u "$rules" "$chart_copy" >&2 || true
  fail "$chart_copy differs from $rules (fix: cp $rules $chart_copy)"
fi

# 2. Syntax and PromQL.
"$promtool" check rules "$rules" || fail "promtool check rules $rules"

# 3. Coverage: each alert has a firing test, a runbook section, and a runbook_url to that section.
shopt -s nullglob
tests=(test/rules/*.test.yaml)
(( ${#tests[@]} > 0 )) || fail "no unit tests in test/rules/*.test.yaml"
alerts=$(sed -nE 's/^ *- alert: *([A-Za-z0-9_]+) *$/\1/p' "$rules")
[[ -n $alerts ]] || fail "no alerts found in $rules"
[[ -f $runbooks ]] || fail "$runbooks is missing"
before=$failed
for alert in $alerts; do
  anchor=$(tr '[:upper:]' '[:lower:]' <<<"$alert")
  grep -qE "alertname: *$alert *\$" "${tests[@]}" || fail "$alert has no promtool unit test"
  grep -qsE "^## $alert\$" "$runbooks" || fail "$alert has no '## $alert' section in $runbooks"
  grep -qE "runbook_url: \"[^\"]*/docs/runbooks.md#$anchor\"" "$rules" || fail "$alert has no runbook_url ending in #$anchor"
done
(( failed == before )) && echo "$(wc -w <<<"$alerts") alerts: each has unit tests, a runbook section and a runbook_url"

# 4. Unit tests: firing and quiet cases with exact labels and annotations.
(( ${#tests[@]} > 0 )) && { "$promtool" test rules "${tests[@]}" || fail "promtool test rules"; }

if (( failed )); then
  echo "test-rules: FAILED" >&2
  exit 1
fi
echo "test-rules: OK"

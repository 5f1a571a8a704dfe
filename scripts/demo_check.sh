#!/usr/bin/env bash
# CI (.ci/run): runs the demo and checks that its output shows what a newcomer should see: the
# operator's path (monitor mode, the suggested policy, enforced), an allowed flow, an L4 and
# L7 violations each with its explanation, a protocol cut, one metrics scrape and the service
# map. Needs root, as the demo's live parts do.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
scripts/demo.sh | tee "$out"
status=0
expect() {  # what, extended regex
  if ! grep -qE -- "$2" "$out"; then
    echo "demo check: no $1 in the demo's output (looked for: $2)" >&2
    status=1
  fi
}
expect "flow reported in monitor mode" '^    .* log web .* -> api .*:8080 TCP '
expect "suggestion written" '^  wrote 2 policies to /.*/suggested from [1-9][0-9]* observed edges'
expect "suggestion's diff" '^  \+ web -> api TCP/8080 HTTP host api\.shop\.local: [0-9]+ flows; in force: deny \(monitor: passes\) by default-deny; suggested: allow by api/ingress/0'
expect "suggested rule" '^ +- ports: \[\{port: 8080, protocol: TCP\}\]'
expect "suggestion in force" '^policy reloaded \(generation 2\)'
expect "allowed flow" 'web -> api:8080 HTTP Host api\.shop\.local : allowed \(HTTP 200\)   \[seen in monitor mode'
expect "explained L4 violation" "drop web .* -> api .*:9090 TCP .*this flow's port is 9090/TCP"
expect "explained peer violation" "drop db .* -> api .*:8080 TCP .*but not from or to db"
expect "explained L7 violation (host)" "drop [a-z0-9]*-?web .* -> [a-z0-9]*-?api .*:8080 TCP HTTP .*this flow's host is evil\.example"
expect "explained L7 violation (protocol)" "drop web .* -> api .*:8080 TCP SSH .*this flow is SSH"
expect "metrics scrape" '^  bulkhead_drops_total\{reason="policy"\} [1-9]'
expect "service map" '^== the service map \(bulkhead graph\): /.*\.svg$'
expect "allowed edge in the service map" '"group:app=web" -> "group:app=api" \[label="HTTP 8080/TCP'
[ "$status" = 0 ] && echo "demo check: passed"
exit "$status"

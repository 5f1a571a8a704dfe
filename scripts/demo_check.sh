#!/usr/bin/env bash
# CI (.ci/run): runs the demo and checks that its output shows what a newcomer should see: an
# allowed flow, an L4 and an L7 violation each with its explanation, a protocol cut, one
# metrics scrape and the service map. Needs root, as the demo's live parts do.
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
expect "allowed flow" 'web -> api:8080 HTTP Host api\.shop\.local : allowed \(HTTP 200\)'
expect "explained L4 violation" "drop web .* -> api .*:9090 TCP .*this flow's port is 9090/TCP"
expect "explained L7 violation (host)" "drop web .* -> api .*:8080 TCP HTTP .*this flow's host is evil\.example"
expect "explained L7 violation (protocol)" "drop web .* -> api .*:8080 TCP SSH .*this flow is SSH"
expect "metrics scrape" '^  bulkhead_drops_total\{reason="policy"\} [1-9]'
expect "service map" '^== the service map \(bulkhead graph\): /.*\.svg$'
expect "allowed edge in the service map" '"group:app=web" -> "group:app=api" \[label="HTTP 8080/TCP'
[ "$status" = 0 ] && echo "demo check: passed"
exit "$status"

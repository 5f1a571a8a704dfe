#!/usr/bin/env bash
# Offline throughput: `bulkhead simulate` against nDPI's own reader (Debian libndpi-bin, the same
# nDPI bulkhead links) on one large capture built from the shared real captures, in one run.
# Prints packets/s of each and the ratio bulkhead/ndpiReader (best of RUNS runs each).
#   COPIES  how many times the captures are replicated (default 400)
#   RUNS    runs per tool (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
COPIES="${COPIES:-400}"
RUNS="${RUNS:-3}"
PCAPS="../shared/pcaps"
[ -d "$PCAPS" ] || { echo "bench: $PCAPS not found (the shared captures sit beside the project)" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
capture="$work/workload.pcap"
# Normal traffic only: the deliberately broken captures are mostly orphan fragments and garbage,
# which each tool discards at a different depth and would make the ratio meaningless.
inputs=()
for f in "$PCAPS"/*.pcap "$PCAPS"/*.cap; do
  case "$(basename "$f")" in badpackets.pcap|ip_fragmented_garbage.pcap) ;; *) inputs+=("$f") ;; esac
done
packets=$(python3 scripts/bench/replicate_pcap.py "$capture" "$COPIES" "${inputs[@]}")

# Allow everything: the comparison is pipeline + DPI work, not policy outcome.
cat > "$work/allow.yaml" <<'YAML'
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: allow-all}
spec:
  endpointSelector: {}
  ingress: [{}]
YAML

best() {  # best wall-clock seconds of RUNS runs of a command
  local best_time=""
  for _ in $(seq "$RUNS"); do
    local start end elapsed
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || { echo "bench: '$*' failed" >&2; exit 1; }
    end=$(date +%s.%N)
    elapsed=$(echo "$end - $start" | bc -l)
    if [ -z "$best_time" ] || [ "$(echo "$elapsed < $best_time" | bc -l)" = 1 ]; then
      best_time=$elapsed
    fi
  done
  echo "$best_time"
}

bulkhead_s=$(best build/bulkhead simulate --json --policy "$work/allow.yaml" --pcap "$capture")
ndpi_s=$(best ndpiReader -q -i "$capture")
bulkhead_pps=$(echo "$packets / $bulkhead_s" | bc -l)
ndpi_pps=$(echo "$packets / $ndpi_s" | bc -l)
printf 'workload: %d packets (%d copies of %d shared captures)\n' "$packets" "$COPIES" "${#inputs[@]}"
printf 'ndpiReader -q        : %8.3f s  %10.0f packets/s\n' "$ndpi_s" "$ndpi_pps"
printf 'bulkhead simulate    : %8.3f s  %10.0f packets/s\n' "$bulkhead_s" "$bulkhead_pps"
printf 'ratio bulkhead/ndpiReader (packets/s): %.2f\n' "$(echo "$bulkhead_pps / $ndpi_pps" | bc -l)"
printf 'result|bulkhead simulate on %d packets|%.0f|packets/s|ndpiReader|%.0f|%.2f|\n' "$packets" \
  "$bulkhead_pps" "$ndpi_pps" "$(echo "$bulkhead_pps / $ndpi_pps" | bc -l)"

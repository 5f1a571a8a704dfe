#!/usr/bin/env bash
# The per-packet pipeline (Google Benchmark, build/bench/pipeline_bench) with its baselines from
# the same run: established-flow packets against the parser alone, new flows against nDPI alone.
# Repetitions are interleaved at random, so that a noisy neighbour slows the baselines as much as
# what they are compared with; each figure is the median of REPETITIONS (default 5).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/bench/pipeline_bench --benchmark_format=json --benchmark_min_time="${MIN_TIME:-0.5}" \
  --benchmark_repetitions="${REPETITIONS:-5}" --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true >"$out" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys
runs = {b["run_name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("aggregate_name") == "median"}
def ns(name):
    # Per packet: a burst benchmark processes several per iteration.
    return 1e9 / runs[name]["items_per_second"]
for name in runs:
    print("%-44s %10.1f ns/packet %12.0f packets/s" % (name, ns(name), 1e9 / ns(name)))
print("ratio established-flow packet / parse only        : %.2f"
      % (ns("BM_EstablishedFlows/flows:4000/burst:32") / ns("BM_BaselineParseOnly")))
print("ratio established, one packet per burst / parse   : %.2f"
      % (ns("BM_EstablishedFlows/flows:4000/burst:1") / ns("BM_BaselineParseOnly")))
print("ratio new-flow packet / nDPI alone on that packet  : %.2f"
      % (ns("BM_NewFlows") / ns("BM_BaselineNdpiFirstPacket")))
# For scripts/bench/all: metric|value|unit|baseline|baseline value|ratio|target
def result(metric, name, baseline, base, target):
    print("result|%s|%.1f|ns|%s|%.1f|%.2f|%s"
          % (metric, ns(name), baseline, ns(base), ns(name) / ns(base), target))
result("established-flow packet (4000 flows, bursts of 32)", "BM_EstablishedFlows/flows:4000/burst:32",
       "the parser alone", "BM_BaselineParseOnly", "ratio<=3.0")
result("established-flow packet (4000 flows, one per burst)", "BM_EstablishedFlows/flows:4000/burst:1",
       "the parser alone", "BM_BaselineParseOnly", "")
result("a new flow's first packet", "BM_NewFlows", "nDPI alone on it", "BM_BaselineNdpiFirstPacket",
       "ratio<=1.2")
result("policy verdict of a new flow", "BM_PolicyVerdict", "the parser alone", "BM_BaselineParseOnly", "")
PY

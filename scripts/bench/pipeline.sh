#!/usr/bin/env bash
# The per-packet pipeline (Google Benchmark, build/bench/pipeline_bench) with its baselines from
# the same run: established-flow packets against the parser alone, new flows against nDPI alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/bench/pipeline_bench --benchmark_format=json --benchmark_min_time="${MIN_TIME:-0.5}" \
  >"$out" 2>/dev/null
python3 - "$out" <<'PY'
import json, sys
runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def ns(name):
    return runs[name]["cpu_time"]
for name, run in runs.items():
    print("%-32s %10.1f ns/packet %12.0f packets/s" % (name, run["cpu_time"], 1e9 / run["cpu_time"]))
print("ratio established-flow packet / parse only        : %.1f" % (ns("BM_EstablishedFlows/4000") / ns("BM_BaselineParseOnly")))
print("ratio new-flow packet / nDPI alone on that packet  : %.2f" % (ns("BM_NewFlows") / ns("BM_BaselineNdpiFirstPacket")))
PY

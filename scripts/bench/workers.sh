#!/usr/bin/env bash
# Workers side by side (build/bench/worker_scaling_bench): established-flow UDP through 1 and 2
# workers on a ring-PMD trunk, each frame on its owner's queue as the patch panel puts it on the
# owner's trunk; one worker is the baseline, in the same run. Repetitions are interleaved at
# random, so that a noisy neighbour slows both alike; each figure is the median of REPETITIONS
# (default 5). Scaling needs a CPU per worker: on fewer CPUs than workers the ratio says so.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
out=$(mktemp)
trap 'rm -f "$out"' EXIT
build/bench/worker_scaling_bench --benchmark_format=json --benchmark_min_time="${MIN_TIME:-2}" \
  --benchmark_repetitions="${REPETITIONS:-5}" --benchmark_enable_random_interleaving=true \
  --benchmark_report_aggregates_only=true >"$out" 2>/dev/null
python3 - "$out" "$(nproc)" <<'PY'
import json, sys
runs = {b["run_name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]
        if b.get("aggregate_name") == "median"}
cpus = int(sys.argv[2])
one = runs["BM_EstablishedFlowsThroughWorkers/1/real_time"]
two = runs["BM_EstablishedFlowsThroughWorkers/2/real_time"]
for name, run in (("1 worker", one), ("2 workers", two)):
    print("%-10s %8.2f M packets/s  (handed off: %d)"
          % (name, run["items_per_second"] / 1e6, run["handedOff"]))
print("CPUs: %d" % cpus)
# For scripts/bench/all: metric|value|unit|baseline|baseline value|ratio|target
print("result|established-flow packets through 2 workers|%.2f|M packets/s|1 worker|%.2f|%.2f|ratio>=1.8"
      % (two["items_per_second"] / 1e6, one["items_per_second"] / 1e6,
         two["items_per_second"] / one["items_per_second"]))
PY

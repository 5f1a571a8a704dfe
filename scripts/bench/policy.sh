#!/usr/bin/env bash
# Reloads (Google Benchmark, build/bench/policy_bench): a generated policy loaded (YAML, validated)
# and compiled into a snapshot, at 100 rules over 50 identities and 10,000 over 1,000; the
# baseline from the same run is one pass of every selector over every identity.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/setup.sh >/dev/null
if ! out=$(cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target policy_bench 2>&1); then
  echo "$out" >&2
  exit 1
fi
json=$(mktemp)
trap 'rm -f "$json"' EXIT
timeout -k 10 "${BOUND:-300}" "${BUILD_DIR:-build}/bench/policy_bench" --benchmark_format=json \
  --benchmark_min_time="${MIN_TIME:-0.5}" >"$json" 2>/dev/null
python3 - "$json" <<'PY'
import json, sys
runs = {b["name"]: b for b in json.load(open(sys.argv[1]))["benchmarks"]}
def ms(name):
    return runs[name]["real_time"]  # reported in ms (Unit kMillisecond)
for name, run in runs.items():
    print("%-48s %10.3f ms" % (name, run["real_time"]))
for size in ("100/50", "10000/1000"):
    load, compile_, base = (ms("BM_PolicyLoad/" + size), ms("BM_PolicyCompile/" + size),
                            ms("BM_BaselineSelectorsOverIdentities/" + size))
    print("%-10s load + compile %8.3f ms; compile / one pass of selectors over identities: %.3f"
          % (size, load + compile_, compile_ / base))
    # For scripts/bench/all: what #11 item 5 bounds is the compile and swap, not YAML parsing.
    print("result|compile %s rules/identities|%.3f|ms|one pass of selectors over identities|%.3f|%.3f|%s"
          % (size, compile_, base, compile_ / base, "value<=50" if size == "10000/1000" else ""))
PY

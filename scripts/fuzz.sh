#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) in build-fuzz and runs them.
#   scripts/fuzz.sh smoke      each target for FUZZ_SECONDS (default 60): what CI runs
#   scripts/fuzz.sh campaign   each target for a number of executions: FUZZ_RUNS_PACKETS
#                              (default 10000000) for the parser and the pipeline, FUZZ_RUNS
#                              (default 1000000) for the others
#   FUZZ_JOBS      targets run at once (default 2); FUZZ_TARGETS  a subset, space-separated
# Corpora live in build-fuzz/corpus/<target>, seeded from ../shared/pcaps, examples/ and
# fuzz/seeds/, and grow from run to run. A crash, a leak of a held packet, a hang or an
# out-of-memory leaves its input in build-fuzz/artifacts/<target>/ and fails the run; replay it
# with build-fuzz/fuzz/<target> <file>, and make it a regression test.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${1:-smoke}"
case "$MODE" in smoke | campaign) ;; *) echo "usage: scripts/fuzz.sh [smoke|campaign]" >&2; exit 2 ;; esac
SETUP_PACKAGES_ONLY=1 scripts/setup.sh
BUILD=build-fuzz
ALL_TARGETS="packet_parser_fuzz pipeline_fuzz policy_loader_fuzz cni_request_fuzz docker_answers_fuzz api_request_fuzz json_output_fuzz"
TARGETS="${FUZZ_TARGETS:-$ALL_TARGETS}"
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DBULKHEAD_FUZZ=ON -DBULKHEAD_BENCHMARKS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "${JOBS:-2}" --target seed_corpus $TARGETS

CORPUS="$BUILD/corpus"
ARTIFACTS="$BUILD/artifacts"
mkdir -p "$CORPUS" "$ARTIFACTS"
captures=()
for capture in ../shared/pcaps/*.pcap ../shared/pcaps/*.pcapng ../shared/pcaps/*.cap examples/*.pcap; do
  [ -e "$capture" ] && captures+=("$capture")
done
if [ ${#captures[@]} -gt 0 ]; then
  "$BUILD/fuzz/seed_corpus" "$CORPUS/packet_parser_fuzz" "$CORPUS/pipeline_fuzz" "${captures[@]}"
fi
mkdir -p "$CORPUS/policy_loader_fuzz"
find examples -name '*.yaml' -exec cp {} "$CORPUS/policy_loader_fuzz/" \;
for seeds in fuzz/seeds/*/; do
  target=$(basename "$seeds")
  mkdir -p "$CORPUS/$target"
  cp "$seeds"* "$CORPUS/$target/"
done

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
run_target() {
  local target=$1 limit
  if [ "$MODE" = smoke ]; then
    limit="-max_total_time=${FUZZ_SECONDS:-60}"
  elif [ "$target" = packet_parser_fuzz ] || [ "$target" = pipeline_fuzz ]; then
    limit="-runs=${FUZZ_RUNS_PACKETS:-10000000}"
  else
    limit="-runs=${FUZZ_RUNS:-1000000}"
  fi
  mkdir -p "$CORPUS/$target" "$ARTIFACTS/$target"
  local command=("$BUILD/fuzz/$target" "$CORPUS/$target" "$limit" -print_final_stats=1
    -timeout=10 -rss_limit_mb=4096 -max_len=65536 -detect_leaks=0
    "-artifact_prefix=$ARTIFACTS/$target/")
  # The CNI plugin calls the agent's default socket: in its own mount namespace nothing
  # listens there, whatever runs on this machine.
  if [ "$target" = cni_request_fuzz ] && [ "$(id -u)" -eq 0 ]; then
    command=(unshare --mount sh -c 'mount -t tmpfs none /run && exec "$@"' fuzz "${command[@]}")
  fi
  local log="$ARTIFACTS/$target.log" status=0
  "${command[@]}" >"$log" 2>&1 || status=$?
  local runs corpus
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "$CORPUS/$target" -type f | wc -l)
  printf 'fuzz: %-22s %12s executions, corpus %6s inputs, exit %s\n' "$target" "$runs" "$corpus" "$status"
  if [ "$status" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5 | sed 's/^/  /'
    return 1
  fi
}

failed=0
pids=()
for target in $TARGETS; do
  run_target "$target" &
  pids+=($!)
  if [ ${#pids[@]} -ge "${FUZZ_JOBS:-2}" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
if [ "$failed" -ne 0 ]; then
  echo "fuzz: failures; inputs in $ARTIFACTS/" >&2
  exit 1
fi
echo "fuzz: $MODE passed"

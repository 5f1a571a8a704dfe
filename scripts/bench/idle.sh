#!/usr/bin/env bash
# Idle cost (bench/idle_bench.cc): a real bulkheadd with two endpoints and no traffic -- its CPU
# over QUIET_SECONDS (default 10) as a share of one core, then PINGS (default 20) pings INTERVAL_MS
# (default 500) apart, each finding the worker asleep -- with busyPoll (the baseline) and as by
# default. Needs root; the lab's namespaces, bridge and agents go at the end, also on failure.
#   QUIET_SECONDS, PINGS, INTERVAL_MS; BULKHEADD, BULKHEAD_CNI: another build's binaries
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, DPDK)" >&2; exit 2; }
for name in QUIET_SECONDS PINGS INTERVAL_MS; do
  value="${!name:-1}"
  case "$value" in '' | *[!0-9]* | 0) echo "bench: $name must be a positive whole number" >&2; exit 2 ;; esac
done
scripts/setup.sh >/dev/null
if ! out=$(cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target idle_bench bulkheadd bulkhead-cni 2>&1); then
  echo "$out" >&2
  exit 1
fi
exec timeout -k 30 "${BOUND:-300}" "${BUILD_DIR:-build}/bench/idle_bench"

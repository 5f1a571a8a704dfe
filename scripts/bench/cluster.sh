#!/usr/bin/env bash
# Beyond one host (bench/cluster_bench.cc): a container's start on host A until host B enforces
# its identity, p50 and p99, with PUBLISHED (default 500) endpoints of a third host in etcd,
# against etcd's own put-to-watch time from the same run. Two real agents and a real etcd;
# needs root. The labs, the agents and etcd go at the end, also on failure.
#   PUBLISHED, SAMPLES (starts timed, default 20)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, DPDK)" >&2; exit 2; }
for name in PUBLISHED SAMPLES; do
  value="${!name:-1}"
  case "$value" in '' | *[!0-9]* | 0) echo "bench: $name must be a positive whole number" >&2; exit 2 ;; esac
done
scripts/setup.sh >/dev/null
if ! out=$(cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target cluster_bench bulkheadd bulkhead 2>&1); then
  echo "$out" >&2
  exit 1
fi
exec timeout -k 30 "${BOUND:-900}" "${BUILD_DIR:-build}/bench/cluster_bench"

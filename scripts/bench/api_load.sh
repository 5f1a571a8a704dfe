#!/usr/bin/env bash
# The local API under hostile clients (bench/api_load_bench.cc): `bulkhead status` and a CNI
# ADD through a real bulkheadd, quiet (the baseline) and with CLIENTS (default 100) connections
# open that are idle or trickle a byte every 100 ms; p50, p99 and the ratio to quiet. Needs root;
# the lab's namespaces, bridge and agent go at the end, also on failure.
#   CLIENTS, SAMPLES (status calls per phase, default 1000; CNI ADDs are a tenth of it)
#   BULKHEADD, BULKHEAD_CNI: another build's binaries instead of this one's
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, DPDK)" >&2; exit 2; }
for name in CLIENTS SAMPLES; do
  value="${!name:-1}"
  case "$value" in '' | *[!0-9]* | 0) echo "bench: $name must be a positive whole number" >&2; exit 2 ;; esac
done
scripts/setup.sh >/dev/null
if ! out=$(cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target api_load_bench bulkheadd bulkhead-cni 2>&1); then
  echo "$out" >&2
  exit 1
fi
exec timeout -k 30 "${BOUND:-900}" "${BUILD_DIR:-build}/bench/api_load_bench"

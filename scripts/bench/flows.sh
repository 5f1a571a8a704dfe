#!/usr/bin/env bash
# Flow scale (bench/flow_scale_bench.cc): a real bulkheadd's resident memory with FLOWS (default
# 1,000,000) classified UDP flows tracked, against the same agent with its endpoints attached and
# no flow, and the growth per flow. Needs root; the lab's namespaces, bridge and agent go at the
# end, also on failure.
#   FLOWS; BULKHEADD, BULKHEAD_CNI: another build's binaries
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, DPDK)" >&2; exit 2; }
case "${FLOWS:-1}" in '' | *[!0-9]* | 0) echo "bench: FLOWS must be a positive whole number" >&2; exit 2 ;; esac
scripts/setup.sh >/dev/null
if ! out=$(cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target flow_scale_bench bulkheadd bulkhead-cni 2>&1); then
  echo "$out" >&2
  exit 1
fi
exec timeout -k 30 "${BOUND:-900}" "${BUILD_DIR:-build}/bench/flow_scale_bench"

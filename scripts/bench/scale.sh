#!/usr/bin/env bash
# Scale: COUNT containers (default 500) of a private Docker engine on NETWORKS bridge networks
# (default 2) behind one bulkheadd (bench/scale_bench.cc): the engine's own `docker run` time as
# the baseline, the agent's start-event-to-enforced latency (p50, p99), its RSS, and how long a
# restarted agent takes to enforce every container again. Needs root; everything it makes (the
# engine, its containers and bridges, the agent's wire) goes at the end, also on failure.
#   COUNT, NETWORKS, PARALLEL (containers started at once, default 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (a Docker engine, DPDK)" >&2; exit 2; }
for name in COUNT NETWORKS PARALLEL; do
  value="${!name:-1}"
  case "$value" in '' | *[!0-9]* | 0) echo "bench: $name must be a positive whole number" >&2; exit 2 ;; esac
done
scripts/setup.sh >/dev/null  # docker.io, busybox-static, DPDK and the build
cmake --build "${BUILD_DIR:-build}" -j"${JOBS:-2}" --target scale_bench bulkheadd >/dev/null
# Bounded: 500 containers take a few minutes to start and as many to remove.
exec timeout -k 30 "${BOUND:-3600}" "${BUILD_DIR:-build}/bench/scale_bench"

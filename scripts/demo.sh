#!/usr/bin/env bash
# The main job, offline: validate the example policy, then run the example capture of a small
# shop (web, api, db, the world) through bulkhead's pipeline and show what is allowed and denied.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
BIN="${BUILD_DIR:-build}"

echo "== bulkhead policy check examples/policies"
"$BIN/bulkhead" policy check examples/policies
echo
echo "== bulkhead simulate: examples/shop.pcap through examples/policies"
"$BIN/bulkhead" simulate --policy examples/policies --endpoints examples/endpoints.yaml \
  --pcap examples/shop.pcap

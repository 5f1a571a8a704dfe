#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (ctest). Tests that need root or a
# component that is absent skip loudly; CI runs as root with everything installed.
#   SANITIZE=1  run the suite under AddressSanitizer + UBSan instead
set -euo pipefail
cd "$(dirname "$0")/.."
# Most integration tests need root (they skip, saying why, without it): a user with sudo runs the
# whole suite through it. BULKHEAD_NO_SUDO=1 runs as you are.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${BULKHEAD_NO_SUDO:-}" ]; then
  exec sudo --preserve-env=BUILD_DIR,SANITIZE,JOBS,CI "$0" "$@"
fi
scripts/setup.sh
if [ "${SANITIZE:-0}" = "1" ]; then
  BUILD_DIR="${BUILD_DIR:-build-asan}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}"
else
  BUILD_DIR="${BUILD_DIR:-build}"
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-2}" --timeout 600

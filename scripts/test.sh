#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (ctest). Tests that need root or a
# component that is absent skip loudly; CI runs as root with everything installed.
#   SANITIZE=1       run the suite under AddressSanitizer + UBSan instead
#   SANITIZE=thread  run the control plane's tests (label "threads") under ThreadSanitizer
set -euo pipefail
cd "$(dirname "$0")/.."
# Most integration tests need root (they skip, saying why, without it): a user with sudo runs the
# whole suite through it. BULKHEAD_NO_SUDO=1 runs as you are.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${BULKHEAD_NO_SUDO:-}" ]; then
  exec sudo --preserve-env=BUILD_DIR,SANITIZE,JOBS,CI "$0" "$@"
fi
scripts/setup.sh
SELECT=()
if [ "${SANITIZE:-0}" = "1" ]; then
  BUILD_DIR="${BUILD_DIR:-build-asan}"
  export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
  export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
  export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan.supp:print_suppressions=0}"
elif [ "${SANITIZE:-0}" = "thread" ]; then
  BUILD_DIR="${BUILD_DIR:-build-tsan}"
  # Any report fails the test: halt_on_error makes the binary exit non-zero at the first one.
  export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}"
  SELECT=(-L threads)
else
  BUILD_DIR="${BUILD_DIR:-build}"
fi
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "${JOBS:-2}" --timeout 600 "${SELECT[@]}"

#!/usr/bin/env bash
# Installs the Debian 12 packages bulkhead needs (only those missing) and builds it.
#   BUILD_DIR  where to build (default: build)
#   SANITIZE=1 build with AddressSanitizer + UBSan (default BUILD_DIR then: build-asan)
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  dpdk dpdk-dev libdpdk-dev
  libndpi-dev libndpi-bin
  libnl-3-dev libnl-route-3-dev libnl-genl-3-dev
  libboost-program-options-dev libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev libpcap-dev
  libssl-dev libcurl4-openssl-dev
  googletest libgtest-dev libbenchmark-dev
  iproute2 ethtool bc
  # integration lab (tests/integration): traffic between namespaces, Debian's /usr/bin/python3
  # for http.server, busybox for container images and as a ping/wget fallback
  iputils-ping curl python3-minimal busybox-static
  # a real CNI runtime (tests/integration/podman_cni.h): podman's CNI backend, the reference
  # plugins; runc because crun fails on hybrid cgroups; catatonit for pods
  podman containernetworking-plugins runc catatonit
  docker.io  # tests/integration/docker_engine.h: a private dockerd (and its containerd, runc)
)

missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

SANITIZE="${SANITIZE:-0}"
if [ "$SANITIZE" = "1" ]; then
  BUILD_DIR="${BUILD_DIR:-build-asan}"
  EXTRA=(-DBULKHEAD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  BUILD_DIR="${BUILD_DIR:-build}"
  EXTRA=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}"
echo "setup: built in $BUILD_DIR"

#!/usr/bin/env bash
# Installs the Debian 12 packages bulkhead needs (only those missing) and builds it.
#   BUILD_DIR  where to build (default: build)
#   SANITIZE=1 build with AddressSanitizer + UBSan (default BUILD_DIR then: build-asan)
#   SANITIZE=thread  build the control plane's tests with ThreadSanitizer (build-tsan)
#   SETUP_PACKAGES_ONLY=1  install what is missing, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  dpdk dpdk-dev libdpdk-dev
  libndpi-dev libndpi-bin
  libnl-3-dev libnl-route-3-dev libnl-genl-3-dev
  libboost-program-options-dev libyaml-cpp-dev libspdlog-dev nlohmann-json3-dev libpcap-dev
  libssl-dev libcurl4-openssl-dev
  # the Prometheus endpoint's HTTP server; prometheus (promtool, and a server to scrape the agent
  # in the tests)
  libcpp-httplib-dev prometheus
  # beyond one host: a real etcd for the kvstore's tests (etcd, etcdctl)
  etcd-server etcd-client
  # a real syslog receiver for the log sinks' tests (tests/controlplane/log_sink_test.cc)
  rsyslog
  # bulkhead graph renders the service map with Graphviz's dot
  graphviz
  # the wire: the patch panel's BPF (clang -target bpf, libbpf, bpftool's skeleton) and the
  # bridges' quarantine (libnftables; nft for inspecting and cleaning up)
  clang libbpf-dev libxdp-dev bpftool libnftables-dev nftables
  # scripts/fuzz.sh: libFuzzer's runtime, and llvm-symbolizer for the sanitizers' stacks
  libclang-rt-14-dev llvm
  googletest libgtest-dev libbenchmark-dev
  iproute2 ethtool bc
  # integration lab (tests/integration): traffic between namespaces, Debian's /usr/bin/python3
  # for http.server, busybox for container images and as a ping/wget fallback
  iputils-ping curl python3-minimal busybox-static
  # a real CNI runtime (tests/integration/podman_cni.h): podman's CNI backend, the reference
  # plugins; runc because crun fails on hybrid cgroups; catatonit for pods
  podman containernetworking-plugins runc catatonit
  docker.io  # tests/integration/docker_engine.h: a private dockerd (and its containerd, runc)
  # the protocol matrix (tests/integration/protocol_servers.h): real servers and their clients,
  # and tcpdump to count what reaches a server
  nginx-light openssl dnsmasq-base dnsutils openssh-server openssh-client
  postgresql postgresql-client mariadb-server mariadb-client redis-server redis-tools
  memcached libmemcached-tools mosquitto mosquitto-clients opensmtpd swaks
  rabbitmq-server amqp-tools tcpdump
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
  # Server packages start their services when installed, unless policy-rc.d says no: the tests
  # start their own, in namespaces, and nothing should be left running on the host.
  added_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  status=0
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
    "${missing[@]}" || status=$?
  [ "$added_policy" = 0 ] || $SUDO rm -f /usr/sbin/policy-rc.d
  [ "$status" = 0 ] || exit "$status"
fi

# scripts/fuzz.sh needs the packages, not this build.
[ "${SETUP_PACKAGES_ONLY:-0}" = 1 ] && exit 0

SANITIZE="${SANITIZE:-0}"
TARGETS=()
if [ "$SANITIZE" = "1" ]; then
  BUILD_DIR="${BUILD_DIR:-build-asan}"
  EXTRA=(-DBULKHEAD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
elif [ "$SANITIZE" = "thread" ]; then
  # ThreadSanitizer for the control plane's threads (the API, the Docker and runtime watchers,
  # the tests' fake agent and engine): DPDK's lcores and memory are left out of this build.
  BUILD_DIR="${BUILD_DIR:-build-tsan}"
  EXTRA=(-DBULKHEAD_THREAD_SANITIZER=ON -DBULKHEAD_BENCHMARKS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo)
  TARGETS=(--target controlplane_test api_test cni_test text_test kvstore_test)
else
  BUILD_DIR="${BUILD_DIR:-build}"
  EXTRA=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$BUILD_DIR" -G Ninja "${EXTRA[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-2}" "${TARGETS[@]}"
echo "setup: built in $BUILD_DIR"

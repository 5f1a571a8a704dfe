#!/usr/bin/env bash
# End to end: iperf3 between two network namespaces (client 10.214.0.1, server 10.214.0.2)
# through a Linux bridge, dpdk-testpmd (io forwarding) and bulkheadd, all in one run, each path on
# fresh namespaces and veth pairs with offloads off on both ends. testpmd forwards between af_packet
# (or af_xdp) vdevs on the two root-namespace veth ends; bulkheadd has one port, its trunk, and its
# patch panel puts both veth ends on it (docs/architecture.md, "The wire"). Against testpmd the
# agent runs with `offload: none`, every packet through its fast path; then with `offload:
# established` (the default: an allowed flow passes veth to veth in the kernel once its verdict
# is final), against the bridge with offloads off and, with the namespaces' offloads on (what
# Docker users have), against the bridge with its offloads on.
# Prints TCP Gbit/s and 64-byte UDP packets/s received per path, then the ratios
# bulkheadd/bridge and bulkheadd/testpmd, and for each agent how much of the traffic its fast path
# saw (the first packets of each flow, through DPDK and nDPI) and how much the wire carried. Needs root. Traffic never leaves the namespaces: the
# addresses exist only inside them, the root-namespace ends and the bridge have none.
#   DURATION  seconds per iperf3 test (default 10)
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (namespaces, veths, DPDK)" >&2; exit 2; }
DURATION="${DURATION:-10}"
case "$DURATION" in '' | *[!0-9]* | 0) echo "bench: DURATION must be a whole number of seconds" >&2; exit 2 ;; esac

scripts/setup.sh >/dev/null  # dpdk, ethtool, iproute2 and the build
if ! command -v iperf3 >/dev/null; then
  echo "bench: installing iperf3"
  timeout 300 apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends iperf3 >/dev/null
fi
for tool in iperf3 dpdk-testpmd ethtool ip ss /usr/bin/python3; do
  command -v "$tool" >/dev/null || { echo "bench: '$tool' is missing" >&2; exit 2; }
done

TAG=$(printf 'be%04x' $(($$ % 65536)))  # every name starts with it: e.g. be1a2b-client, be1a2bc3
CLIENT_NS="$TAG-client"
SERVER_NS="$TAG-server"
CLIENT_IP=10.214.0.1
SERVER_IP=10.214.0.2
CLIENT_MAC=02:62:68:e2:00:01
SERVER_MAC=02:62:68:e2:00:02
PORT=5201
BOUND=$((4 * DURATION + 120))  # upper bound on the life of every background process

work=$(mktemp -d)
pids=()          # background processes we started (each a `timeout` wrapping the real program)
veths=()         # root-namespace veth ends we created
bridge=""
rule=()          # the iptables rule we inserted, empty when none
cleaned=0

# Sends SIGTERM to one process we started, SIGKILL after $2 seconds, and reaps it.
stop_pid() {
  local pid=$1 grace=${2:-10} i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]+"${kept[@]}"}")
}

# Removes one path's lab: its processes, what an agent that did not stop cleanly left in the
# kernel, bridge, iptables rule, veths and namespaces.
teardown() {
  local pid name
  for pid in "${pids[@]+"${pids[@]}"}"; do stop_pid "$pid" 10; done
  if [ -d "$work/state" ]; then
    timeout 30 build/bulkheadd --instance "$TAG" --state-directory "$work/state" --release \
      >/dev/null 2>&1 || echo "bench: bulkheadd --release failed" >&2
    rm -rf "$work/state"
  fi
  if [ ${#rule[@]} -gt 0 ]; then
    timeout 10 iptables -D "${rule[@]}" || echo "bench: could not remove iptables rule: ${rule[*]}" >&2
    rule=()
  fi
  if [ -n "$bridge" ]; then
    timeout 10 ip link del dev "$bridge" 2>/dev/null || true
    bridge=""
  fi
  for name in "${veths[@]+"${veths[@]}"}"; do timeout 10 ip link del dev "$name" 2>/dev/null || true; done
  veths=()
  for name in "$CLIENT_NS" "$SERVER_NS"; do
    [ -e "/run/netns/$name" ] && { timeout 10 ip netns del "$name" || true; }
  done
  rm -rf /var/run/dpdk/"$TAG"-* 2>/dev/null || true
}

cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap '' INT TERM
  teardown
  rm -rf "$work"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

# Runs a command bounded by $1 seconds in the background and waits for it, so Ctrl-C interrupts
# at once (the trap then stops it by PID). Returns the command's exit code.
bounded() {
  local seconds=$1 pid rc=0
  shift
  timeout -k 5 "$seconds" "$@" &
  pid=$!
  pids+=("$pid")
  wait "$pid" || rc=$?
  local kept=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done
  pids=("${kept[@]+"${kept[@]}"}")
  return "$rc"
}

# Starts a long-running program in the background (bounded, output to $1); sets $started.
start_bg() {
  local log=$1
  shift
  timeout -k 5 "$BOUND" "$@" >"$log" 2>&1 &
  started=$!
  pids+=("$started")
}

# wait_for SECONDS PID COMMAND...: polls COMMAND until it succeeds; fails early if PID died.
wait_for() {
  local seconds=$1 pid=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    [ -z "$pid" ] || kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Setup steps: a failure ends the run (the EXIT trap cleans up), even inside `f || ...`.
must() {
  timeout 10 "$@" || { echo "bench: '$*' failed" >&2; exit 1; }
}

offloads_off() {  # $1: device, $2: its namespace (none: the root namespace)
  local ns=${2:-}
  if [ -n "$ns" ]; then
    timeout 10 ip netns exec "$ns" ethtool -K "$1" tx off rx off tso off gso off gro off >/dev/null 2>&1
  else
    timeout 10 ethtool -K "$1" tx off rx off tso off gso off gro off >/dev/null 2>&1
  fi
}

# Fresh namespaces and veth pairs for path number $1: sets CLIENT_DEV and SERVER_DEV, the
# root-namespace ends (up, unaddressed, IPv6 off); the namespace ends are eth0 with the addresses.
# Offloads go off on both ends unless $2 is "offloads-on".
make_lab() {
  local n=$1 keep=${2:-} side ns dev ip mac
  for side in client server; do
    if [ "$side" = client ]; then
      ns=$CLIENT_NS dev="${TAG}c$n" ip=$CLIENT_IP mac=$CLIENT_MAC
      CLIENT_DEV=$dev
    else
      ns=$SERVER_NS dev="${TAG}s$n" ip=$SERVER_IP mac=$SERVER_MAC
      SERVER_DEV=$dev
    fi
    must ip netns add "$ns"
    veths+=("$dev")
    must ip link add "$dev" type veth peer name eth0 netns "$ns"
    must ip -n "$ns" link set eth0 address "$mac"
    must ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    must sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1"
    must ip -n "$ns" addr add "$ip/24" dev eth0
    if [ "$keep" != offloads-on ]; then
      offloads_off eth0 "$ns" || { echo "bench: ethtool -K eth0 in $ns failed" >&2; exit 1; }
      offloads_off "$dev" || { echo "bench: ethtool -K $dev failed" >&2; exit 1; }
    fi
    must ip -n "$ns" link set lo up
    must ip -n "$ns" link set eth0 up
    must ip link set "$dev" up
  done
}

# iperf3 server in the server namespace, then a TCP and a UDP run from the client. Appends one
# result line for the path to $work/results: label tcp_gbps tcp_retransmits udp_pps udp_loss% sent_pps
measure() {
  local label=$1 server
  start_bg "$work/$label.iperf3-server.log" ip netns exec "$SERVER_NS" iperf3 -s -B "$SERVER_IP" -p "$PORT"
  server=$started
  if ! wait_for 10 "$server" sh -c "ip netns exec '$SERVER_NS' ss -ltnH 'sport = :$PORT' | grep -q ."; then
    echo "  iperf3 server did not start: $(tail -3 "$work/$label.iperf3-server.log")"
    stop_pid "$server" 5
    return 1
  fi
  local tcp udp
  bounded $((DURATION + 30)) ip netns exec "$CLIENT_NS" iperf3 -c "$SERVER_IP" -p "$PORT" \
    --connect-timeout 5000 -t "$DURATION" -J >"$work/$label.tcp.json" 2>&1 || true
  tcp=$(/usr/bin/python3 - "$work/$label.tcp.json" tcp <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("error: no JSON from iperf3 (%s)" % e); sys.exit()
if "error" in d:
    print("error: " + d["error"]); sys.exit()
r, s = d["end"]["sum_received"], d["end"]["sum_sent"]
print("%.3f %d" % (r["bits_per_second"] / 1e9, s.get("retransmits", 0)))
PY
)
  sleep 1
  bounded $((DURATION + 30)) ip netns exec "$CLIENT_NS" iperf3 -c "$SERVER_IP" -p "$PORT" \
    --connect-timeout 5000 -u -l 64 -b 0 -t "$DURATION" -J >"$work/$label.udp.json" 2>&1 || true
  udp=$(/usr/bin/python3 - "$work/$label.udp.json" udp <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("error: no JSON from iperf3 (%s)" % e); sys.exit()
if "error" in d:
    print("error: " + d["error"]); sys.exit()
r, s = d["end"]["sum_received"], d["end"]["sum_sent"]
received = r["packets"] - r["lost_packets"]
print("%.0f %.1f %.0f" % (received / r["seconds"], r["lost_percent"], s["packets"] / s["seconds"]))
PY
)
  stop_pid "$server" 5
  # shellcheck disable=SC2086  # the fields are meant to split
  case "$tcp" in error*) echo "  TCP: $tcp"; tcp="- -" ;; *) printf '  TCP: %s Gbit/s (%s retransmits)\n' $tcp ;; esac
  # shellcheck disable=SC2086
  case "$udp" in error*) echo "  UDP: $udp"; udp="- - -" ;;
    *) printf '  UDP 64 B: %s packets/s received, %s%% lost (sender %s packets/s)\n' $udp ;; esac
  echo "$label $tcp $udp" >>"$work/results"
}

# --- (a) Linux bridge ---------------------------------------------------------------------------
path_bridge() {  # $1: path number, $2: offloads-on (optional)
  make_lab "$1" "${2:-}"
  bridge="${TAG}br"
  must ip link add "$bridge" type bridge
  must sysctl -qw "net.ipv6.conf.$bridge.disable_ipv6=1"
  must ip link set "$CLIENT_DEV" master "$bridge"
  must ip link set "$SERVER_DEV" master "$bridge"
  must ip link set "$bridge" up
  local why=""
  if command -v iptables >/dev/null; then
    if timeout 10 iptables -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD DROP'; then
      why="iptables FORWARD policy is DROP"
    elif [ -d /sys/module/br_netfilter ]; then
      why="br_netfilter is loaded"
    fi
  elif [ -d /sys/module/br_netfilter ]; then
    echo "  warning: br_netfilter is loaded but iptables is missing: bridged traffic may be filtered"
  fi
  if [ -n "$why" ]; then
    local spec=(FORWARD -i "$bridge" -o "$bridge" -j ACCEPT)
    must iptables -I "${spec[@]}"
    rule=("${spec[@]}")
    echo "  iptables rule needed ($why): inserted 'iptables -I ${spec[*]}', removed afterwards"
  else
    echo "  iptables rule not needed (no iptables FORWARD DROP policy, no br_netfilter)"
  fi
  # STP is off by default: the ports forward as soon as they are up.
  measure "bridge${2:+-$2}"
}

# --- (b) dpdk-testpmd, io forwarding ------------------------------------------------------------
path_testpmd() {  # $1: af_packet | af_xdp, $2: path number
  local driver=$1 n=$2 label="testpmd-$1" pmd
  make_lab "$n"
  pmd="net_$driver"
  mkfifo "$work/$label.stdin"
  exec 3<>"$work/$label.stdin"  # held open: testpmd exits at once on stdin EOF
  # Started here rather than by start_bg: a background command's stdin must be redirected on the
  # command itself, or the shell gives it /dev/null. stdbuf: the log is read for readiness.
  timeout -k 5 "$BOUND" stdbuf -oL dpdk-testpmd -l 0,1 --no-pci --no-huge -m 512 \
    --file-prefix="$TAG-$label" --log-level=lib.*:warning \
    --vdev="${pmd}0,iface=$CLIENT_DEV" --vdev="${pmd}1,iface=$SERVER_DEV" \
    -- --forward-mode=io --auto-start --total-num-mbufs=8192 <&3 >"$work/$label.log" 2>&1 &
  started=$!
  pids+=("$started")
  local testpmd=$started
  exec 3>&-
  rm -f "$work/$label.stdin"
  if ! wait_for 30 "$testpmd" grep -q "Press enter to exit" "$work/$label.log"; then
    echo "  dpdk-testpmd did not start ($driver):"
    tail -5 "$work/$label.log" | sed 's/^/    /'
    teardown
    return 1
  fi
  sleep 1
  measure "$label" || true
  stop_pid "$testpmd" 10
  # testpmd's own totals, printed when it stops.
  grep -A3 "Accumulated forward statistics" "$work/$label.log" | grep -E "RX-packets|TX-packets" |
    sed 's/^ */  testpmd: /' || true
  teardown
}

# --- (c) bulkheadd ------------------------------------------------------------------------------
path_bulkheadd() {  # $1: af_packet | auto, $2: path number, $3: none | established, $4: offloads-on
  local driver=$1 n=$2 offload=$3 label="bulkheadd-$1-offload-$3${4:+-$4}"
  make_lab "$n" "${4:-}"
  cat >"$work/policy.yaml" <<YAML
apiVersion: bulkhead.io/v1
kind: SegmentationPolicy
metadata: {name: e2e-server}
spec:
  endpointSelector: {matchLabels: {app: e2e-server}}
  ingress:
    - fromEndpoints: [{matchLabels: {app: e2e-client}}]
      toPorts: [{ports: [{port: $PORT, protocol: TCP}, {port: $PORT, protocol: UDP}]}]
YAML
  cat >"$work/$label.yaml" <<YAML
policy: $work/policy.yaml
apiSocket: $work/$label.sock
violationLog: $work/$label.violations.jsonl
portDriver: $driver
offload: $offload
instance: $TAG
stateDirectory: $work/state
hugepages: off
memoryMegabytes: 512
eal: ["--file-prefix=$TAG-$label"]
logLevel: info
endpoints:
  - {name: client, interface: $CLIENT_DEV, labels: {app: e2e-client}, ips: [$CLIENT_IP], macs: ["$CLIENT_MAC"]}
  - {name: server, interface: $SERVER_DEV, labels: {app: e2e-server}, ips: [$SERVER_IP], macs: ["$SERVER_MAC"]}
YAML
  start_bg "$work/$label.log" build/bulkheadd --config "$work/$label.yaml"
  local agent=$started
  if ! wait_for 30 "$agent" grep -q "bulkheadd ready" "$work/$label.log"; then
    echo "  bulkheadd did not start ($driver):"
    tail -5 "$work/$label.log" | sed 's/^/    /'
    teardown
    return 1
  fi
  sleep 1
  measure "$label" || true
  timeout 10 build/bulkhead status --json --socket "$work/$label.sock" >"$work/$label.status.json" 2>/dev/null || true
  stop_pid "$agent" 15
  /usr/bin/python3 - "$work/$label.status.json" "$work/$label.violations.jsonl" <<'PY' || true
import json, os, sys
try:
    s = json.load(open(sys.argv[1]))
except Exception:
    print("  (no status from the agent)"); sys.exit()
drivers = "trunk %s=%s, tags %s" % (s["wire"]["trunk"]["port"], s["wire"]["trunkDriver"],
                                   ", ".join("%s=%s" % (e["interface"], e["tag"]) for e in s["endpoints"]))
c = s["counters"]
drops = {k: v for k, v in c["dropped"].items() if v}
violations = sum(1 for _ in open(sys.argv[2])) if os.path.exists(sys.argv[2]) else 0
w = s["wire"]["counters"]
print("  agent: %s; rx %d tx %d txDropped %d; pipeline drops %s; flows created %d; "
      "violation lines %d" % (drivers, c["rxPackets"], c["txPackets"], c["txDropped"],
                              drops or "none", c["flowsCreated"], violations))
print("  offload %s: the fast path (DPDK, nDPI) saw %d frames, the wire carried %d past it "
      "(%d directions offloaded, %d refused, %d taken back)"
      % (s["wire"].get("offload", "?"), c["rxPackets"], w.get("offloaded", 0),
         c.get("offloadInstalled", 0), c.get("offloadFailed", 0), c.get("offloadWithdrawn", 0)))
PY
  teardown
}

echo "e2e: iperf3 $CLIENT_IP -> $SERVER_IP (namespaces $CLIENT_NS, $SERVER_NS), ${DURATION}s per test," \
  "TCP and UDP -l 64 -b 0; $(nproc) CPUs"
: >"$work/results"
echo "(a) Linux bridge"
path_bridge 1 || echo "  bridge path failed"
teardown
echo "(a') Linux bridge, the namespaces' and the bridge ports' offloads on"
path_bridge 7 offloads-on || echo "  bridge offloads-on path failed"
teardown
echo "(b) dpdk-testpmd io forwarding, af_packet"
path_testpmd af_packet 2 || echo "  testpmd af_packet path failed"
echo "(c) bulkheadd, portDriver af_packet, offload none"
path_bulkheadd af_packet 3 none || echo "  bulkheadd af_packet path failed"
echo "(b') dpdk-testpmd io forwarding, af_xdp"
path_testpmd af_xdp 4 || echo "  testpmd af_xdp path failed"
echo "(c') bulkheadd, portDriver auto (af_xdp), offload none"
path_bulkheadd auto 5 none || echo "  bulkheadd auto path failed"
echo "(d) bulkheadd, portDriver auto (af_xdp), offload established"
path_bulkheadd auto 6 established || echo "  bulkheadd offload path failed"
echo "(d') bulkheadd, portDriver auto (af_xdp), offload established, the namespaces' offloads on"
path_bulkheadd auto 8 established offloads-on || echo "  bulkheadd offload offloads-on path failed"

echo
/usr/bin/python3 - "$work/results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    num = lambda x: None if x == "-" else float(x)
    rows[f[0]] = {"tcp": num(f[1]), "udp": num(f[3]), "loss": f[4]}
order = ["bridge", "bridge-offloads-on", "testpmd-af_packet", "bulkheadd-af_packet-offload-none",
         "testpmd-af_xdp", "bulkheadd-auto-offload-none", "bulkheadd-auto-offload-established",
         "bulkheadd-auto-offload-established-offloads-on"]
print("%-48s %12s %18s %8s" % ("path", "TCP Gbit/s", "UDP 64B packets/s", "UDP loss"))
for name in order:
    r = rows.get(name)
    if r is None:
        print("%-48s %12s %18s %8s" % (name, "failed", "failed", "-")); continue
    tcp = "-" if r["tcp"] is None else "%.2f" % r["tcp"]
    udp = "-" if r["udp"] is None else "%.0f" % r["udp"]
    loss = "-" if r["loss"] == "-" else r["loss"] + "%"
    print("%-48s %12s %18s %8s" % (name, tcp, udp, loss))
def ratio(a, b, key):
    x, y = rows.get(a, {}).get(key), rows.get(b, {}).get(key)
    return "n/a" if not x or not y else "%.2f" % (x / y)
for agent, bases in (("bulkheadd-af_packet-offload-none", ("bridge", "testpmd-af_packet")),
                     ("bulkheadd-auto-offload-none", ("bridge", "testpmd-af_xdp")),
                     ("bulkheadd-auto-offload-established", ("bridge",)),
                     ("bulkheadd-auto-offload-established-offloads-on", ("bridge-offloads-on",))):
    for base in bases:
        print("ratio %s/%s: TCP %s, UDP packets/s %s" % (agent, base, ratio(agent, base, "tcp"), ratio(agent, base, "udp")))
# For scripts/bench/all: the fast path against testpmd, and #11 item 2's targets -- bulk TCP
# >= 1.0x the bridge with the offloads Docker users have on, 64-byte UDP >= 1.0x the bridge.
for agent, base, keys in (("bulkheadd-af_packet-offload-none", "testpmd-af_packet", ("tcp", "udp")),
                          ("bulkheadd-auto-offload-established-offloads-on", "bridge-offloads-on", ("tcp",)),
                          ("bulkheadd-auto-offload-established", "bridge", ("tcp", "udp"))):
    for key, unit, what in (("tcp", "Gbit/s", "TCP"), ("udp", "packets/s", "64-byte UDP")):
        if key not in keys:
            continue
        target = "" if agent.endswith("offload-none") else "ratio>=1.0"
        x, y = rows.get(agent, {}).get(key), rows.get(base, {}).get(key)
        if x and y:
            print("result|%s through %s|%.2f|%s|%s|%.2f|%.2f|%s" % (what, agent, x, unit, base, y, x / y, target))
# The af_packet comparison is the benchmark; af_xdp is a bonus where it works.
main = ("bridge", "testpmd-af_packet", "bulkheadd-af_packet-offload-none")
sys.exit(0 if all(rows.get(n, {}).get("tcp") and rows.get(n, {}).get("udp") for n in main) else 1)
PY

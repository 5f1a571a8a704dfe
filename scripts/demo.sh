#!/usr/bin/env bash
# The main job. Part 1 (offline): validate the example policy and run the example capture of a
# small shop through bulkhead's pipeline. Part 2 (live, root): three network namespaces (web,
# api, db) whose veths are plugged into bulkheadd, on the operator's path: monitor mode, the
# policy suggested from what was seen, that policy enforced; a port, a peer and SSH on the HTTP
# port refused and explained, the agent's flows, violations, metrics and service map. Part 3
# (live, root, scripts/demo_docker.sh): real Docker containers found by their labels, the
# hand-written example policy with its host names, a container restart. Everything the demo creates is removed when it ends, also on
# Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
# The live parts need root: a user with sudo gets the whole demo through it.
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && [ -z "${BULKHEAD_NO_SUDO:-}" ]; then
  exec sudo --preserve-env=BUILD_DIR "$0" "$@"
fi
scripts/setup.sh >/dev/null
BIN="${BUILD_DIR:-build}"

echo "== bulkhead policy check examples/policies"
"$BIN/bulkhead" policy check examples/policies
echo
echo "== bulkhead simulate: examples/shop.pcap through examples/policies"
"$BIN/bulkhead" simulate --policy examples/policies --endpoints examples/endpoints.yaml \
  --pcap examples/shop.pcap

if [ "$(id -u)" -ne 0 ]; then
  echo
  echo "(the live part needs root: network namespaces and a DPDK agent; run $0 as root)"
  exit 0
fi

# --- live -------------------------------------------------------------------------------------
prefix="bhdemo$$"
instance=$(printf 'dm%x' $$)  # names the agent's trunk, programs and table
work=$(mktemp -d)
agent_pid=""
server_pids=()
cleanup() {
  set +e
  for pid in "${server_pids[@]}"; do kill "$pid" 2>/dev/null; done
  if [ -n "$agent_pid" ]; then
    kill -TERM "$agent_pid" 2>/dev/null
    timeout 10 tail --pid="$agent_pid" -f /dev/null 2>/dev/null || kill -KILL "$agent_pid" 2>/dev/null
  fi
  # Whatever an agent that did not stop cleanly left in the kernel (trunk, filters, table).
  [ -d "$work/state" ] && "$BIN/bulkheadd" --instance "$instance" --state-directory "$work/state" \
    --release >/dev/null 2>&1
  for role in web api db; do
    ip netns del "$prefix-$role" 2>/dev/null
    ip link del "${prefix:0:10}${role:0:1}" 2>/dev/null
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

declare -A ip=([web]=10.10.0.10 [api]=10.10.0.11 [db]=10.10.0.12)
declare -A mac=([web]=02:00:00:00:00:0a [api]=02:00:00:00:00:0b [db]=02:00:00:00:00:0c)
endpoints=""
for role in web api db; do
  ns="$prefix-$role"
  host="${prefix:0:10}${role:0:1}"
  ip netns add "$ns"
  ip link add "$host" type veth peer name eth0 netns "$ns"
  ip -n "$ns" link set eth0 address "${mac[$role]}"
  ip -n "$ns" addr add "${ip[$role]}/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip link set "$host" up
  # Checksums must be complete on the wire: the agent forwards frames, it does not finish them.
  ethtool -K "$host" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  ip netns exec "$ns" ethtool -K eth0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
  endpoints+="  - {name: $role, interface: $host, labels: {app: $role}, ips: [${ip[$role]}], macs: [\"${mac[$role]}\"]}"$'\n'
done

# The operator's path (docs/operations.md): observe in monitor mode, have the policy
# suggested from what was seen, put it in force, see what it refuses and why.
mkdir -p "$work/policies"
cp packaging/policies/00-monitor-everything.yaml "$work/policies/"
cat >"$work/bulkhead.yaml" <<EOF
policy: $work/policies
apiSocket: $work/api.sock
violationLog: $work/violations.jsonl
stateDirectory: $work/state
instance: $instance
hugepages: off
memoryMegabytes: 512
mbufsPerPort: 4095
violationIntervalSeconds: 1
metricsAddress: 127.0.0.1:0
watchPolicy: false  # the demo reloads once it has put the suggestion in place
endpoints:
$endpoints
EOF

echo
echo "== live: bulkheadd between namespaces web (${ip[web]}), api (${ip[api]}), db (${ip[db]})"
"$BIN/bulkheadd" --config "$work/bulkhead.yaml" >"$work/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  grep -q "bulkheadd ready" "$work/agent.log" && break
  kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log"; exit 1; }
  sleep 0.1
done
grep "attached endpoint\|fell back\|ready" "$work/agent.log" | sed 's/^/  agent: /'
cli() { "$BIN/bulkhead" "$@" --socket "$work/api.sock"; }

in_ns() { local role=$1; shift; ip netns exec "$prefix-$role" "$@"; }
# Not through in_ns: $! must be the server itself (ip netns exec execs it), not a subshell whose
# child would outlive the cleanup's kill.
for port in 8080 9090; do
  ip netns exec "$prefix-api" /usr/bin/python3 -m http.server "$port" --bind "${ip[api]}" \
    --directory "$work" >/dev/null 2>&1 &
  server_pids+=($!)
done
sleep 1

try_http() {  # from, port, Host header
  local from=$1 port=$2 host=$3 code
  code=$(in_ns "$from" curl -s -o /dev/null -w "%{http_code}" --max-time 2 \
    --resolve "$host:$port:${ip[api]}" "http://$host:$port/" || true)
  [ "$code" = "200" ] && echo "allowed (HTTP 200)" || echo "blocked (no answer)"
}
try_ssh() {  # SSH spoken on the HTTP port: it passes while nDPI classifies, then is reset
  in_ns web timeout 5 /usr/bin/python3 -c "
import socket
s = socket.create_connection(('${ip[api]}', 8080), 2); s.settimeout(2)
try:
    s.sendall(b'SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'); s.recv(100); s.sendall(b'x'); s.recv(100)
    print('not cut')
except (ConnectionResetError, BrokenPipeError):
    print('cut by a TCP reset once nDPI saw SSH')
except socket.timeout:
    print('no answer')" 2>&1 || true
}

echo
echo "== 1. observe: the only policy is 00-monitor-everything.yaml (monitor mode, no rules)"
for _ in 1 2 3; do
  echo "  web -> api:8080 HTTP Host api.shop.local : $(try_http web 8080 api.shop.local)   [the shop's own traffic]"
done
sleep 1
echo "  each is reported (log), not dropped:"
cli violations | sed 's/^/    /'

echo
echo "== 2. bulkhead policy suggest --output $work/suggested --diff"
cli policy suggest --output "$work/suggested" --diff | sed 's/^/  /'
echo
echo "== the suggested policy for api: $work/suggested/api.yaml"
sed 's/^/  /' "$work/suggested/api.yaml"

echo
echo "== 3. enforce: the suggestion replaces the monitor policy"
rm "$work/policies/00-monitor-everything.yaml"
cp "$work/suggested/"*.yaml "$work/policies/"
cli policy reload
echo "  web -> api:8080 HTTP Host api.shop.local : $(try_http web 8080 api.shop.local)   [seen in monitor mode: allowed]"
echo "  web -> api:9090 HTTP                     : $(try_http web 9090 api.shop.local)   [never seen: no rule opens 9090]"
echo "  db  -> api:8080 HTTP                     : $(try_http db 8080 api.shop.local)   [api took HTTP from web only]"
echo "  web -> api:8080 SSH                      : $(try_ssh)   [the rule names HTTP]"
sleep 1.2

echo
echo "== bulkhead endpoints"
cli endpoints
echo
echo "== bulkhead flows"
cli flows
echo
echo "== bulkhead violations in enforce mode, each with the rule that came closest and why"
cli violations | grep -v ' log ' || true
echo
echo "== one violation as logged"
grep -m 1 '"mode":"enforce"' "$work/violations.jsonl"
echo
metrics=$(cli status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["metrics"]["address"])')
echo "== Prometheus metrics, scraped once from http://$metrics/metrics (docs/metrics.md)"
curl -s --max-time 5 "http://$metrics/metrics" |
  grep -E '^bulkhead_(packets_total|drops_total\{reason="policy"|flows_cut_total|classifications_total|endpoints\{source="config"|policy_generation)' |
  sed 's/^/  /'
echo
map="${TMPDIR:-/tmp}/bulkhead-demo-map.svg"
if cli graph --format svg --output "$map"; then
  echo "== the service map (bulkhead graph): $map"
  cli graph | grep -- ' -> ' | sed 's/^/  /'
fi

# The namespaces and their agent go before the Docker part starts its own.
cleanup
trap - EXIT INT TERM
scripts/demo_docker.sh

#!/usr/bin/env bash
# Part 3 of the demo (scripts/demo.sh runs it; root): real Docker containers found by their
# labels. A private dockerd (its own socket, data, cgroup; no iptables, no docker0, so it never
# touches an engine the machine already runs) runs web, api and db from a busybox image
# imported locally; bulkheadd follows that engine with the example policy. Everything is
# removed when it ends, also on Ctrl-C or failure.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BUILD_DIR:-build}"
DOCKER=/usr/bin/docker  # Debian's client, matching its engine

if [ ! -x /usr/sbin/dockerd ] || [ ! -x "$DOCKER" ] || [ ! -x /bin/busybox ]; then
  echo "(the Docker part needs docker.io and busybox-static: scripts/setup.sh installs them)"
  exit 0
fi

tag="bhd$$"
instance=$(printf 'dk%x' $$)  # names the agent's trunk, programs and table
# dockerd makes these whatever its exec root: removed at the end if they were not here before.
created_dirs=()
for dir in /run/docker/plugins /run/docker /run/containerd/s /run/containerd; do
  [ -e "$dir" ] || created_dirs+=("$dir")
done
run="/run/$tag"  # short: containerd's socket path lives below it
work=$(mktemp -d)
dockerd_pid=""
agent_pid=""
forward_rule=()
stop_pid() {  # pid, seconds
  kill -TERM "$1" 2>/dev/null || return 0
  timeout "$2" tail --pid="$1" -f /dev/null 2>/dev/null || kill -KILL "$1" 2>/dev/null
}
cleanup() {
  set +e
  [ -n "$agent_pid" ] && stop_pid "$agent_pid" 10
  [ -d "$work/state" ] && "$BIN/bulkheadd" --instance "$instance" --state-directory "$work/state" \
    --release >/dev/null 2>&1
  if [ -n "$dockerd_pid" ]; then
    dk rm -f "$tag-web" "$tag-api" "$tag-db" >/dev/null 2>&1
    dk network rm "$tag-shop" >/dev/null 2>&1
    stop_pid "$dockerd_pid" 20
  fi
  [ ${#forward_rule[@]} -gt 0 ] && iptables -D FORWARD "${forward_rule[@]}" 2>/dev/null
  ip link del "${tag}br" 2>/dev/null
  grep " $run/" /proc/mounts | cut -d' ' -f2 | sort -r | xargs -r -n1 umount -l 2>/dev/null
  find /sys/fs/cgroup -maxdepth 3 -type d -path "*/$tag*" 2>/dev/null | sort -r | xargs -r rmdir 2>/dev/null
  for dir in "${created_dirs[@]}"; do rmdir "$dir" 2>/dev/null; done
  rm -rf "$run" "$work"
}
trap cleanup EXIT INT TERM
dk() { "$DOCKER" --config "$run/client" -H "unix://$run/docker.sock" "$@"; }

echo
echo "== live with Docker: a private engine, containers found by their labels"
mkdir -p "$run"
echo "{\"deprecated-key-path\": \"$run/key.json\"}" >"$run/daemon.json"
/usr/sbin/dockerd --host="unix://$run/docker.sock" --data-root="$run/data" \
  --exec-root="$run/exec" --pidfile="$run/docker.pid" --config-file="$run/daemon.json" \
  --group=root --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
  --exec-opt=native.cgroupdriver=cgroupfs --cgroup-parent="/$tag" \
  --containerd-namespace="$tag" --containerd-plugins-namespace="$tag-plugins" \
  --shutdown-timeout=5 >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 150); do
  dk version >/dev/null 2>&1 && break
  kill -0 "$dockerd_pid" 2>/dev/null || { tail -20 "$work/dockerd.log"; exit 1; }
  sleep 0.2
done
dk version --format '  engine: dockerd {{.Server.Version}}, API {{.Server.APIVersion}}'

# No registry is reachable: the image is Debian's static busybox with its applets.
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc"
cp /bin/busybox "$work/rootfs/bin/"
for applet in $(/bin/busybox --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
echo "root:x:0:0:root:/:/bin/sh" >"$work/rootfs/etc/passwd"
tar --numeric-owner -C "$work/rootfs" -c . | dk import --change 'CMD ["/bin/sh"]' - bulkhead-demo/busybox:1 >/dev/null
dk network create --driver bridge --subnet 10.11.0.0/24 \
  --opt "com.docker.network.bridge.name=${tag}br" "$tag-shop" >/dev/null
# br_netfilter hands bridged frames to iptables: under another engine's FORWARD DROP, our
# bridge needs its own accept.
if iptables -S FORWARD 2>/dev/null | grep -q -- '-P FORWARD DROP'; then
  forward_rule=(-i "${tag}br" -o "${tag}br" -j ACCEPT)
  iptables -I FORWARD "${forward_rule[@]}"
fi

image=bulkhead-demo/busybox:1
runc() { dk run -d --stop-timeout 0 --network "$tag-shop" "$@" >/dev/null; }
runc --name "$tag-api" --label app=api $image sh -c \
  'mkdir -p /www && echo hello from api > /www/index.html && httpd -p 8080 -h /www && httpd -p 9090 -h /www && exec sleep 3600'
api_ip=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$tag-shop\").IPAddress}}" "$tag-api")
runc --name "$tag-db" --label app=db $image sleep 3600
runc --name "$tag-web" --label app=web --label tier=frontend --add-host "api.shop.local:$api_ip" $image sleep 3600
echo "  containers: $tag-web (app=web), $tag-api (app=api, $api_ip), $tag-db (app=db) on network $tag-shop"

cat >"$work/bulkhead.yaml" <<EOF
policy: $PWD/examples/policies
apiSocket: $work/api.sock
violationLog: $work/violations.jsonl
stateDirectory: $work/state
instance: $instance
docker: {socket: $run/docker.sock}
hugepages: off
memoryMegabytes: 512
violationIntervalSeconds: 1
EOF
"$BIN/bulkheadd" --config "$work/bulkhead.yaml" >"$work/agent.log" 2>&1 &
agent_pid=$!
cli() { "$BIN/bulkhead" "$@" --socket "$work/api.sock"; }
for _ in $(seq 150); do
  [ "$(cli endpoints --json 2>/dev/null | grep -o '"source":"docker"' | wc -l)" -ge 3 ] && break
  kill -0 "$agent_pid" 2>/dev/null || { cat "$work/agent.log"; exit 1; }
  sleep 0.2
done
grep "docker:\|attached endpoint\|protecting bridge" "$work/agent.log" | sed 's/^.* info /  agent: /'

fetch() {  # from, url, [Host header]
  local from=$1 url=$2 host=${3:-}
  if dk exec "$tag-$from" timeout 3 wget -q -O - ${host:+--header "Host: $host"} "$url" >/dev/null 2>&1; then
    echo "allowed"
  else
    echo "blocked"
  fi
}
echo "  web -> api.shop.local:8080 HTTP         : $(fetch web http://api.shop.local:8080/)   [shop-api: HTTP from app=web, hosts *.shop.local]"
echo "  web -> api:8080 HTTP Host evil.example  : $(fetch web "http://$api_ip:8080/" evil.example)   [host not allowed]"
echo "  web -> api:9090 HTTP                    : $(fetch web "http://$api_ip:9090/")   [no rule opens 9090]"
echo "  db  -> api:8080 HTTP                    : $(fetch db "http://$api_ip:8080/" api.shop.local)   [api takes HTTP from web only]"

echo
echo "== docker restart $tag-api: a new veth, the same identity, the same policy"
before=$(cli endpoints | awk -v n="$tag-api" '$1 == n {print $2, $4}')
dk restart -t 0 "$tag-api" >/dev/null
for _ in $(seq 100); do
  after=$(cli endpoints | awk -v n="$tag-api" '$1 == n {print $2, $4}')
  [ -n "$after" ] && [ "$after" != "$before" ] && break
  sleep 0.1
done
api_ip=$(dk inspect -f "{{(index .NetworkSettings.Networks \"$tag-shop\").IPAddress}}" "$tag-api")
echo "  before: identity ${before% *} on ${before#* };  after: identity ${after% *} on ${after#* } ($api_ip)"
sleep 1
echo "  web -> api:8080 HTTP Host api.shop.local: $(fetch web "http://$api_ip:8080/" api.shop.local)"
echo "  web -> api:9090 HTTP                    : $(fetch web "http://$api_ip:9090/")"
sleep 1.2

echo
echo "== bulkhead endpoints"
cli endpoints
echo
echo "== bulkhead violations"
cli violations

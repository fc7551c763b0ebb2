#!/usr/bin/env bash
# make demo: Plexus attaching several networks to two pods on this machine,
# no cluster needed. Everything happens inside a dedicated "host" network
# namespace (plexus-demo), so the machine's own links, routes and sysctls
# are never touched; everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
BIN=$REPO/bin
RUN=/run/plexus-demo
HOST=plexus-demo
PODS=(pod-a pod-b)

[ "$(id -u)" = 0 ] || { echo "make demo needs root (it creates network namespaces)"; exit 1; }
for b in plexus plexus-replay plexusd cni/bridge cni/macvlan cni/host-local cni/static; do
	[ -x "$BIN/$b" ] || { echo "missing $BIN/$b: run make build plugins"; exit 1; }
done

if ! command -v ping >/dev/null || ! command -v nsenter >/dev/null; then
	echo "installing iputils-ping and util-linux (ping, nsenter)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iputils-ping util-linux >/dev/null
fi

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
DAEMON_PID=
cleanup() {
	set +e
	[ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
	for p in "${PODS[@]}"; do ip netns del "demo-$p" 2>/dev/null; done
	ip netns del "$HOST" 2>/dev/null
	rm -rf "$RUN"
}
trap cleanup EXIT
cleanup
trap cleanup EXIT

step "host namespace $HOST with a macvlan parent link (a veth pair: this kernel has no dummy links)"
mkdir -p "$RUN"
ip netns add "$HOST"
ip -n "$HOST" link set lo up
ip -n "$HOST" link add plexus-demo0 type veth peer name plexus-demo0p
ip -n "$HOST" link set plexus-demo0 up
ip -n "$HOST" link set plexus-demo0p up

step "plexusd on examples/standalone/"
cat > "$RUN/plexusd.json" <<JSON
{
  "clusterNetwork": "cluster-net",
  "manifestsDir": "$REPO/examples/standalone",
  "binDir": "$BIN/cni",
  "cniDir": "$RUN/cni",
  "confDir": "$RUN/net.d",
  "socketDir": "$RUN/sock",
  "statusDir": "$RUN/status",
  "logFile": "$RUN/plexusd.log",
  "logToStderr": false
}
JSON
cat "$RUN/plexusd.json"
nsenter --net=/run/netns/$HOST "$BIN/plexusd" --config "$RUN/plexusd.json" &
DAEMON_PID=$!
for _ in $(seq 100); do [ -S "$RUN/sock/plexus.sock" ] && break; sleep 0.05; done
[ -S "$RUN/sock/plexus.sock" ] || { echo "plexusd did not start:"; cat "$RUN/plexusd.log"; exit 1; }

# What containerd gives the plexus plugin on stdin.
NETCONF=$(printf '{"cniVersion":"1.0.0","name":"plexus","type":"plexus","socketPath":"%s","cniDir":"%s","binDir":"%s"}' \
	"$RUN/sock/plexus.sock" "$RUN/cni" "$BIN/cni")

cni() { # cni COMMAND POD: exec the shim exactly as a runtime does
	local cmd=$1 pod=$2
	CNI_COMMAND=$cmd CNI_CONTAINERID="demo-$pod-sandbox" CNI_NETNS=/run/netns/demo-$pod CNI_IFNAME=eth0 \
	CNI_PATH="$BIN/cni" CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=$pod;K8S_POD_INFRA_CONTAINER_ID=demo-$pod-sandbox" \
		nsenter --net=/run/netns/$HOST "$BIN/plexus" <<<"$NETCONF"
}
addr() { ip -n "demo-$1" -4 -br addr show dev "$2" | awk '{print $3}' | cut -d/ -f1; }

for p in "${PODS[@]}"; do
	step "ADD $p"
	ip netns add "demo-$p"
	echo "runtime result (the default network's): $(cni ADD "$p")"
	echo "network-status ($RUN/status/default/$p.json):"
	cat "$RUN/status/default/$p.json"; echo
	ip -n "demo-$p" -br addr
done

step "ping pod-a -> pod-b over eth0 (bridge), net1 (macvlan) and data0 (macvlan, static IP)"
for ifc in eth0 net1 data0; do
	dst=$(addr pod-b "$ifc")
	if ! out=$(nsenter --net=/run/netns/demo-pod-a ping -c 2 -W 2 -I "$ifc" "$dst" 2>&1); then
		echo "pod-a $ifc -> pod-b $dst: FAILED"; echo "$out"; exit 1
	fi
	echo "pod-a $ifc -> pod-b $dst: $(echo "$out" | grep -o '[0-9]* received')"
done

step "CHECK every attachment"
for p in "${PODS[@]}"; do cni CHECK "$p" && echo "$p: ok"; done

step "DEL both pods"
for p in "${PODS[@]}"; do cni DEL "$p" && echo "$p: deleted"; ip netns del "demo-$p"; done

step "what is left"
kill "$DAEMON_PID"; wait "$DAEMON_PID" 2>/dev/null || true; DAEMON_PID=
left=$( (find "$RUN/cni/attachments" "$RUN/cni/results" "$RUN/status" -type f 2>/dev/null; \
	find "$RUN/ipam" -type f ! -name lock ! -name 'last_reserved_ip*' 2>/dev/null) | wc -l)
echo "records, libcni cache, status and IP allocation files left: $left"
echo "host links: $(ip -n $HOST -br link | awk '{print $1}' | tr '\n' ' ')(bridge and parent are removed next)"
ip -n "$HOST" link del plexus-br0 2>/dev/null || true
ip -n "$HOST" link del plexus-demo0
ip netns del "$HOST"
rm -rf "$RUN"
echo "network namespaces left: $(ip netns list | grep -c -E '^(plexus-demo|demo-pod)' || true)"
[ "$left" = 0 ] || { echo "LEAK"; exit 1; }
step "demo done: nothing left"

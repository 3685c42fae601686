#!/usr/bin/env bash
# A multi-node Coxswain cluster on this machine: the master on the host, each
# worker in a network namespace of its own. Run as root on Debian 12.
#
#   hack/netns-cluster.sh up [N]        master + N workers (default 3)
#   hack/netns-cluster.sh down          stop and remove everything up made
#   hack/netns-cluster.sh status        the components and whether they run
#   hack/netns-cluster.sh kill [-s SIG] NAME...   signal components (default KILL), wait until gone
#   hack/netns-cluster.sh start NAME... (re)start stopped components with their flags
#   hack/netns-cluster.sh routes        (re)program the host-gw pod routes
#
# NAME is kube-apiserver, kube-scheduler, kube-controller-manager, registry,
# or wI-containerd, wI-kubelet, wI-kube-proxy for worker I; "control-plane"
# stands for the first three.
#
# Layout: bridge cxsnet0 with 10.200.0.1/24 on the host; the apiserver
# (embedded etcd), scheduler, controller-manager (node IPAM over
# 10.244.0.0/16, /24 per node) and a registry on 10.200.0.1:5000 run on the
# host. Worker I is the namespace cxs-wI with 10.200.0.(10+I) on a veth
# into the bridge and a default route via 10.200.0.1, running its own
# containerd, kubelet (node worker-I) and kube-proxy. Pod CIDRs are routed
# host-gw: in each worker to every other worker's podCIDR, and on the host
# to every podCIDR, via the worker's address. Nothing from the bridge may be
# forwarded out of any other interface (chain COXSWAIN-NETNS in FORWARD),
# nothing is masqueraded on the host, and the cluster DNS has no upstream.
# No host sysctl is changed (ip_forward is set inside each worker namespace,
# and goes with it). Neither the kubelet nor kube-proxy programs routes
# between nodes yet, so this script does (`routes`).
#
# State in _output/netns/, logs in _output/netns/logs/ (kept by down).
#
# The workers' processes enter only the worker's network namespace
# (nsenter --net), not a mount namespace of their own as `ip netns exec`
# would give them: `ip netns exec` remounts /sys, hiding the cgroup
# hierarchies runc needs, and the kubelet's network namespace files (bind
# mounts under its root dir) must be visible to containerd's runc.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/_output/netns
BIN=$ROOT/_output/bin
LOGS=$OUT/logs
PIDS=$OUT/pids
export PATH=$PATH:/usr/local/go/bin

NET_BRIDGE=cxsnet0
NET_PREFIX=10.200.0
HOST_IP=$NET_PREFIX.1
NET_CIDR=$NET_PREFIX.0/24
REGISTRY=$HOST_IP:5000
CLUSTER_CIDR=${NETNS_CLUSTER_CIDR:-10.244.0.0/16}
DNS_IP=169.254.20.10
CHAIN=COXSWAIN-NETNS
# How long a silent node stays Ready (upstream's default is 40s).
NODE_MONITOR_GRACE=${NETNS_NODE_MONITOR_GRACE_PERIOD:-20s}
KUBECONFIG_FILE=$OUT/admin.kubeconfig
SHOWN_LOGS=""

source "$ROOT/hack/lib.sh"
source "$ROOT/hack/local-up-steps.sh"
POD_CIDR_RANGE=$CLUSTER_CIDR

ns_name() { echo "cxs-w$1"; }
worker_ip() { echo "$NET_PREFIX.$((10 + $1))"; }
node_name() { echo "worker-$1"; }
kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }
# in_ns I CMD...: runs CMD in worker I's network namespace only.
in_ns() {
	local i=$1
	shift
	nsenter --net="/run/netns/$(ns_name "$i")" "$@"
}

workers() {
	if [ -f "$OUT/workers" ]; then
		seq 1 "$(cat "$OUT/workers")"
	else
		ip netns list 2>/dev/null | awk '{print $1}' | sed -n 's/^cxs-w\([0-9][0-9]*\)$/\1/p' | sort -n
	fi
}

# fail_with_logs WHAT LOG...: dies naming the logs to read, with their tails.
fail_with_logs() {
	local what=$1
	shift
	for l in "$@"; do
		[ -f "$l" ] || continue
		echo "---- last lines of $l"
		tail -n 15 "$l"
		SHOWN_LOGS+=" $l "
	done
	die "$what; read $*"
}

# await WHAT SECONDS "LOG..." CMD...: polls CMD until it succeeds; when time
# runs out, dies naming the logs to read.
await() {
	local what=$1 secs=$2 logs=$3
	shift 3
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		# shellcheck disable=SC2086
		[ $SECONDS -lt $deadline ] || fail_with_logs "timed out after ${secs}s waiting for $what" $logs
		[ -z "${UP_IN_PROGRESS:-}" ] || fail_if_any_exited "while waiting for $what"
		sleep 1
	done
}

# fail_if_any_exited CONTEXT: during up, dies at once when a component that
# was started has exited.
fail_if_any_exited() {
	local n
	for n in $(component_names); do
		if [ -f "$PIDS/$n" ] && ! running "$n"; then
			fail_with_logs "$n exited $1" "$LOGS/$n.log"
		fi
	done
}

# on_up_exit: when up fails, names the components that died and their logs.
on_up_exit() {
	local rc=$? n
	[ $rc -eq 0 ] && return 0
	echo
	for n in $(component_names); do
		[ -f "$PIDS/$n" ] && ! running "$n" || continue
		if [[ $SHOWN_LOGS == *" $LOGS/$n.log "* ]]; then
			echo "$n exited: see $LOGS/$n.log"
		else
			echo "---- $n exited; last lines of $LOGS/$n.log"
			tail -n 15 "$LOGS/$n.log" 2>/dev/null
		fi
	done
	log "hack/netns-cluster.sh up failed; logs in $LOGS; clean up with: hack/netns-cluster.sh down"
	return $rc
}

check_prerequisites() {
	[ "$(id -u)" = 0 ] || die "hack/netns-cluster.sh needs root (namespaces, containerd, iptables)"
	install_packages
	for c in ip iptables nsenter ctr kubectl curl; do
		command -v "$c" >/dev/null || die "$c is missing"
	done
	# The cluster must not take over routes or addresses that are not ours
	# (make run's cluster uses 10.244.0.0/16 on bridge cxs0).
	local r
	r=$(ip -o route show root "$CLUSTER_CIDR" | grep -v " dev $NET_BRIDGE" || true)
	[ -z "$r" ] || die "the host already routes part of $CLUSTER_CIDR ($r): is make run's cluster up? Run make down, or set NETNS_CLUSTER_CIDR"
	r=$(ip -o route show root "$NET_CIDR" | grep -v " dev $NET_BRIDGE" || true)
	[ -z "$r" ] || die "the host already routes part of $NET_CIDR ($r)"
}

setup_host_network() {
	log "bridge $NET_BRIDGE ($HOST_IP/24) and chain $CHAIN"
	netns_bridge_up "$NET_BRIDGE" "$HOST_IP/24" "$NET_CIDR" "$CHAIN"
}

setup_worker_network() {
	local i=$1
	netns_node_up "$(ns_name "$i")" "cxsv-w$i" "$NET_BRIDGE" "$(worker_ip "$i")/24" "$HOST_IP"
	log "worker $i: namespace $(ns_name "$i"), $(worker_ip "$i") on cxsv-w$i"
}

start_master() {
	start_apiserver "$HOST_IP" 0 --advertise-address "$HOST_IP"
	start_scheduler --bind-address "$HOST_IP" --secure-port 0
	start_controller_manager --bind-address "$HOST_IP" --secure-port 0 --node-monitor-grace-period "$NODE_MONITOR_GRACE"
}

start_worker_containerd() {
	local i=$1 dir=$OUT/w$1/containerd
	if [ ! -f "$dir/config.toml" ]; then
		# The kubelet drives containerd through its client API: no CRI plugin.
		containerd_config "$dir" "$dir/containerd.sock" 'disabled_plugins = ["io.containerd.grpc.v1.cri"]'
	fi
	start "w$i-containerd" nsenter --net="/run/netns/$(ns_name "$i")" /usr/bin/containerd --config "$dir/config.toml"
	await "containerd of worker $i" 30 "$LOGS/w$i-containerd.log" test -S "$dir/containerd.sock"
}

start_worker_kubelet() {
	local i=$1 dir=$OUT/w$1
	mkdir -p "$dir/kubelet" "$dir/cni" "$dir/pod-logs"
	cp "$OUT/apiserver/kubelet.kubeconfig" "$dir/kubelet.kubeconfig"
	start "w$i-kubelet" nsenter --net="/run/netns/$(ns_name "$i")" "$BIN/kubelet" --kubeconfig "$dir/kubelet.kubeconfig" \
		--hostname-override "$(node_name "$i")" --node-ip "$(worker_ip "$i")" \
		--containerd-address "$dir/containerd/containerd.sock" --root-dir "$dir/kubelet" \
		--pod-log-dir "$dir/pod-logs" --cni-bin-dir /usr/lib/cni --cni-conf-dir "$dir/cni" --cni-bridge cxs0 \
		--image-airgap-dir "$OUT/images" --insecure-registry "$REGISTRY" \
		--pod-infra-image "$REGISTRY/coxswain/pause:latest" --cluster-dns "$DNS_IP" \
		--address "$(worker_ip "$i")" --port 10250 --healthz-bind-address 127.0.0.1 --healthz-port 10248 \
		--node-lease-renew-interval 5s --log-level info
}

start_worker_proxy() {
	local i=$1
	start "w$i-kube-proxy" nsenter --net="/run/netns/$(ns_name "$i")" "$BIN/kube-proxy" --kubeconfig "$OUT/apiserver/kube-proxy.kubeconfig" \
		--hostname-override "$(node_name "$i")" --cluster-cidr "$CLUSTER_CIDR" --dns-bind "$DNS_IP" \
		--healthz-bind-address 127.0.0.1 --log-level info
}

node_pod_cidr() {
	kc get node "$(node_name "$1")" -o jsonpath='{.spec.podCIDR}' 2>/dev/null
}

node_has_pod_cidr() { [ -n "$(node_pod_cidr "$1")" ]; }

node_ready() {
	kc get node "$(node_name "$1")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True
}

# program_routes: host-gw routes for every worker's podCIDR, in the other
# workers and on the host (recorded in $OUT/routes for down).
program_routes() {
	local i j cidr ip
	: >"$OUT/routes.new"
	for i in $(workers); do
		cidr=$(node_pod_cidr "$i")
		[ -n "$cidr" ] || die "node $(node_name "$i") has no spec.podCIDR (is the controller-manager's node IPAM running? see $LOGS/kube-controller-manager.log)"
		ip=$(worker_ip "$i")
		for j in $(workers); do
			[ "$j" = "$i" ] && continue
			ip -n "$(ns_name "$j")" route replace "$cidr" via "$ip" dev eth0
		done
		ip route replace "$cidr" via "$ip" dev "$NET_BRIDGE"
		echo "$cidr via $ip" >>"$OUT/routes.new"
		log "route $cidr via $ip ($(node_name "$i"))"
	done
	mv "$OUT/routes.new" "$OUT/routes"
}

# component_names: every component of the cluster, in start order.
component_names() {
	echo registry kube-apiserver kube-scheduler kube-controller-manager
	for i in $(workers); do echo "w$i-containerd" "w$i-kubelet" "w$i-kube-proxy"; done
}

start_component() {
	case $1 in
	control-plane)
		start_component kube-apiserver
		start_component kube-scheduler
		start_component kube-controller-manager
		;;
	registry) start_registry ;;
	kube-apiserver) start_apiserver "$HOST_IP" 0 --advertise-address "$HOST_IP" ;;
	kube-scheduler) start_scheduler --bind-address "$HOST_IP" --secure-port 0 ;;
	kube-controller-manager) start_controller_manager --bind-address "$HOST_IP" --secure-port 0 --node-monitor-grace-period "$NODE_MONITOR_GRACE" ;;
	w[0-9]*-containerd) start_worker_containerd "$(echo "$1" | sed 's/^w\([0-9]*\)-.*/\1/')" ;;
	w[0-9]*-kubelet) start_worker_kubelet "$(echo "$1" | sed 's/^w\([0-9]*\)-.*/\1/')" ;;
	w[0-9]*-kube-proxy) start_worker_proxy "$(echo "$1" | sed 's/^w\([0-9]*\)-.*/\1/')" ;;
	*) die "unknown component $1 (one of: control-plane $(component_names | tr '\n' ' '))" ;;
	esac
}

cmd_up() {
	local n=${1:-3}
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "N must be 1..200, not $n"
	check_prerequisites
	if [ -d "$PIDS" ]; then
		for f in "$PIDS"/*; do
			[ -f "$f" ] || continue
			running "$(basename "$f")" && die "a netns cluster is already up ($(basename "$f") runs, pid $(cat "$f")); run hack/netns-cluster.sh down first"
		done
	fi
	if [ -d "$OUT" ] || ip link show "$NET_BRIDGE" >/dev/null 2>&1; then
		log "removing what a previous run left"
		cmd_down >/dev/null
	fi
	rm -rf "$LOGS"
	mkdir -p "$OUT" "$LOGS" "$PIDS"
	trap on_up_exit EXIT
	UP_IN_PROGRESS=1
	echo "$n" >"$OUT/workers"
	log "netns cluster: master on $HOST_IP, $n workers; logs in $LOGS"
	if [ -z "${NETNS_SKIP_BUILD:-}" ]; then
		log "building"
		make -C "$ROOT" build >"$LOGS/build.log" 2>&1 || fail_with_logs "make build failed" "$LOGS/build.log"
	fi
	setup_host_network
	for i in $(workers); do setup_worker_network "$i"; done
	start_registry
	push_images
	start_master
	for i in $(workers); do
		start_worker_containerd "$i"
		start_worker_kubelet "$i"
		start_worker_proxy "$i"
	done
	for i in $(workers); do
		await "node $(node_name "$i") to register with a podCIDR" 120 "$LOGS/w$i-kubelet.log $LOGS/kube-controller-manager.log" \
			node_has_pod_cidr "$i"
	done
	program_routes
	for i in $(workers); do
		await "node $(node_name "$i") Ready" 180 "$LOGS/w$i-kubelet.log $LOGS/w$i-containerd.log" node_ready "$i"
		log "node $(node_name "$i") Ready"
	done
	for i in $(workers); do
		await "kube-proxy of worker $i /healthz" 60 "$LOGS/w$i-kube-proxy.log" in_ns "$i" curl -sf http://127.0.0.1:10256/healthz
	done
	echo
	echo "Coxswain netns cluster is up: master $HOST_IP, workers $(for i in $(workers); do printf '%s=%s ' "$(node_name "$i")" "$(worker_ip "$i")"; done)"
	echo "  export KUBECONFIG=$KUBECONFIG_FILE"
	echo "  kubectl get nodes -o wide"
	echo "Images: $REGISTRY/coxswain/{pause,busybox,redis,guestbook}:latest; logs in $LOGS"
	echo "Stop it with: hack/netns-cluster.sh down"
}

# kill_netns_processes I: kills (by pid) every process left in worker I's
# network namespace or in one of its pods' network namespaces: the
# containers and shims of a containerd that died before its tasks.
kill_netns_processes() {
	netns_kill_processes "worker $1" "/run/netns/$(ns_name "$1")" "$OUT/w$1"/kubelet/netns/*
}

cmd_down() {
	[ "$(id -u)" = 0 ] || die "hack/netns-cluster.sh needs root"
	local i ws
	ws=$(workers)
	if [ -d "$PIDS" ]; then
		# Kubelets first, so that they do not restart what is being removed.
		for i in $ws; do stop "w$i-kubelet"; done
		for i in $ws; do stop "w$i-kube-proxy"; done
		for i in $ws; do kill_containerd_tasks "$OUT/w$i/containerd/containerd.sock"; done
		for i in $ws; do stop "w$i-containerd"; done
	fi
	for i in $ws; do kill_netns_processes "$i"; done
	if [ -d "$PIDS" ]; then
		stop kube-controller-manager
		stop kube-scheduler
		stop kube-apiserver
		stop registry
	fi
	[ -d "$OUT" ] && unmount_under "$OUT"
	if [ -f "$OUT/routes" ]; then
		while read -r cidr _ via; do
			ip route del "$cidr" via "$via" 2>/dev/null || true
		done <"$OUT/routes"
	fi
	for i in $ws; do netns_node_down "$(ns_name "$i")" "cxsv-w$i"; done
	netns_bridge_down "$NET_BRIDGE" "$CHAIN"
	if [ -d "$OUT" ]; then
		# Everything but the logs.
		find "$OUT" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null ||
			{ unmount_under "$OUT"; find "$OUT" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +; }
	fi
	log "netns cluster down (logs kept in $LOGS)"
}

cmd_status() {
	[ -d "$PIDS" ] || { echo "no netns cluster"; return 0; }
	local n
	for n in $(component_names); do
		if running "$n"; then
			printf '%-28s running (pid %s)\n' "$n" "$(cat "$PIDS/$n")"
		else
			printf '%-28s stopped\n' "$n"
		fi
	done
}

cmd_kill() {
	local sig=KILL
	if [ "${1:-}" = -s ]; then
		sig=$2
		shift 2
	fi
	[ $# -gt 0 ] || die "kill: name the components"
	local n names=()
	for n in "$@"; do
		if [ "$n" = control-plane ]; then names+=(kube-apiserver kube-scheduler kube-controller-manager); else names+=("$n"); fi
	done
	# Signal them all at once, then wait for each to be gone.
	local pids=() pid
	for n in "${names[@]}"; do
		if running "$n"; then
			pid=$(cat "$PIDS/$n")
			kill -s "$sig" "$pid"
			pids+=("$n:$pid")
		else
			log "$n is not running"
		fi
	done
	local deadline=$((SECONDS + 60)) np
	for np in ${pids[@]+"${pids[@]}"}; do
		n=${np%%:*}
		pid=${np#*:}
		while alive "$pid"; do
			[ $SECONDS -lt $deadline ] || die "$n (pid $pid) still runs 60s after SIG$sig"
			sleep 0.1
		done
		log "$n (pid $pid) ended after SIG$sig"
	done
}

cmd_start() {
	[ $# -gt 0 ] || die "start: name the components"
	[ -f "$OUT/workers" ] || die "no netns cluster under $OUT; run hack/netns-cluster.sh up first"
	local n
	for n in "$@"; do start_component "$n"; done
}

main() {
	local cmd=${1:-}
	[ $# -gt 0 ] && shift
	case $cmd in
	up) cmd_up "$@" ;;
	down) cmd_down ;;
	status) cmd_status ;;
	kill) cmd_kill "$@" ;;
	start) cmd_start "$@" ;;
	routes) program_routes ;;
	*)
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
		exit 2
		;;
	esac
}

main "$@"

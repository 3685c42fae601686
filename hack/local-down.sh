#!/usr/bin/env bash
# make down: stops what make run started (by the pids it recorded) and
# removes the interfaces, iptables chains, mounts and state it made.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/_output/local
BIN=$ROOT/_output/bin
PIDS=$OUT/pids
LOGS=$OUT/logs
BRIDGE=cxs0
source "$ROOT/hack/lib.sh"

[ -d "$OUT" ] || { log "nothing to stop"; exit 0; }
# The kubelet first, so that it does not restart what is being removed.
stop kubelet
stop kube-proxy
if [ -x "$BIN/kube-proxy" ]; then "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
# Containers of the pods: the shims of our containerd's namespace.
kill_containerd_tasks "$OUT/containerd/containerd.sock"
stop kube-controller-manager
stop kube-scheduler
stop kube-apiserver
stop registry
stop containerd
# Network namespaces and mounts under the kubelet's root.
unmount_under "$OUT"
for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
	ip link show "$v" 2>/dev/null | grep -q "master $BRIDGE" && ip link del "$v" 2>/dev/null
done
ip link del "$BRIDGE" 2>/dev/null && log "removed bridge $BRIDGE"
if iptables -C FORWARD -j COXSWAIN-LOCAL-ONLY 2>/dev/null; then
	iptables -D FORWARD -j COXSWAIN-LOCAL-ONLY
	iptables -F COXSWAIN-LOCAL-ONLY
	iptables -X COXSWAIN-LOCAL-ONLY
fi
ip addr del 169.254.20.10/32 dev lo 2>/dev/null
[ -f "$OUT/route_localnet" ] && sysctl -qw net.ipv4.conf.all.route_localnet="$(cat "$OUT/route_localnet")"
ip link del coxswain-dns 2>/dev/null
rm -rf "$OUT"
log "Coxswain stopped; $OUT removed"

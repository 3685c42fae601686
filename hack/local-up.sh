#!/usr/bin/env bash
# make run: a one-node Coxswain cluster on this machine, under _output/local,
# with the guestbook demo. Run as root on Debian 12. `make down` undoes it.
#
# It starts (each a process of its own, pids in _output/local/pids, logs in
# _output/local/logs): a private containerd (own socket, root and state), a
# local registry (Debian's docker-registry) on 127.0.0.1:5000 holding the
# project's images, kube-apiserver with its embedded etcd, kube-scheduler,
# kube-controller-manager, kubelet and kube-proxy; then applies the guestbook.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/_output/local
BIN=$ROOT/_output/bin
LOGS=$OUT/logs
PIDS=$OUT/pids
NODE=${NODE_NAME:-$(hostname -s | tr '[:upper:]' '[:lower:]')}
REGISTRY=127.0.0.1:5000
export PATH=$PATH:/usr/local/go/bin

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "make run needs root (containerd, CNI, iptables)"

install_packages() {
	local pkgs=(containerd runc iptables containernetworking-plugins docker-registry iproute2 busybox-static conntrack make gcc)
	local missing=()
	for p in "${pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
	fi
}

# start NAME CMD...: runs CMD in the background, logging to logs/NAME.log.
start() {
	local name=$1
	shift
	if [ -f "$PIDS/$name" ] && kill -0 "$(cat "$PIDS/$name")" 2>/dev/null; then
		log "$name already running (pid $(cat "$PIDS/$name"))"
		return
	fi
	"$@" >"$LOGS/$name.log" 2>&1 &
	echo $! >"$PIDS/$name"
	log "started $name (pid $!)"
}

# wait_for WHAT SECONDS CMD...: polls CMD until it succeeds or time runs out.
wait_for() {
	local what=$1 secs=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $deadline ] || die "timed out after ${secs}s waiting for $what (logs in $LOGS)"
		sleep 1
	done
}

main() {
	install_packages
	mkdir -p "$OUT" "$LOGS" "$PIDS"
	log "building"
	make -C "$ROOT" build >"$LOGS/build.log" 2>&1 || die "make build failed: see $LOGS/build.log"
	source "$ROOT/hack/local-up-steps.sh"
	start_containerd
	start_registry
	push_images
	start_control_plane
	start_node
	deploy_guestbook
}

main "$@"

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

source "$ROOT/hack/lib.sh"

[ "$(id -u)" = 0 ] || die "make run needs root (containerd, CNI, iptables)"

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

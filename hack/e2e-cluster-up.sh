#!/usr/bin/env bash
# make e2e-cluster-up: builds, then runs the hack/cluster-up tests of
# test/e2e (build tag e2e), one after the other, over the netns transport:
#   TestClusterUp              one master (embedded etcd) and two workers
#                              (test/e2e/testdata/cluster-up.ini)
#   TestClusterUpThreeMasters  three masters (an etcd cluster of Debian's
#                              etcd-server) and one worker, one master's
#                              etcd and apiserver stopped on the way
#                              (test/e2e/testdata/cluster-up-ha.ini)
# Each brings its cluster up, runs hack/cluster-up a second time (nothing
# may change) and takes it down with hack/cluster-down (nothing may be
# left). Installs etcd-server and etcd-client (apt-get) when missing, with
# Debian's own etcd.service kept from starting. Runs hack/cluster-down on
# both inventories again when it exits, whatever happened. Output in
# _output/cluster/e2e/logs/test.log (kept, with the components' logs in
# _output/cluster/{e2e,e2e-ha}/logs). CLUSTER_UP_SKIP_BUILD=1 uses
# _output/bin as it is (or E2E_CLUSTER_UP_BIN, a folder of the binaries);
# E2E_CLUSTER_UP_RUN overrides the go test -run pattern. Run as root;
# kubectl (v1.32) must be on PATH.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$PATH:/usr/local/go/bin
source "$ROOT/hack/lib.sh"
GO=${GO:-go}
INVENTORIES=("$ROOT/test/e2e/testdata/cluster-up.ini" "$ROOT/test/e2e/testdata/cluster-up-ha.ini")
LOGS=$ROOT/_output/cluster/e2e/logs
RUN=${E2E_CLUSTER_UP_RUN:-'^TestClusterUp(ThreeMasters)?$'}

[ "$(id -u)" = 0 ] || die "make e2e-cluster-up needs root (namespaces, containerd, iptables)"
command -v kubectl >/dev/null || die "kubectl (v1.32) must be on PATH"

# etcd_packages: Debian's etcd-server (the three masters' members) and
# etcd-client (etcdctl, which the test uses), installed when missing. A
# policy-rc.d of our own, if there is none, keeps the package from starting
# a stray etcd.service on this machine.
etcd_packages() {
	local p missing=()
	for p in etcd-server etcd-client; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -gt 0 ] || return 0
	log "installing ${missing[*]}"
	local own_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	local rc=0
	DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
	[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
	[ $rc = 0 ] || die "apt-get install ${missing[*]} failed"
}

cleanup() {
	local inv
	for inv in "${INVENTORIES[@]}"; do
		"$ROOT/hack/cluster-down" "$inv" >/dev/null 2>&1 || log "hack/cluster-down $inv failed; run it again"
	done
	rm -rf "$ROOT/_output/cluster/e2e-bin" "$ROOT/_output/cluster/e2e-ha-bin"
}
trap cleanup EXIT
mkdir -p "$LOGS"
etcd_packages
if [ -z "${CLUSTER_UP_SKIP_BUILD:-}" ]; then
	log "building"
	make -C "$ROOT" build >"$LOGS/build.log" 2>&1 || die "make build failed: see $LOGS/build.log"
fi
log "running $RUN (test/e2e)"
rc=0
start=$SECONDS
(cd "$ROOT/test/e2e" && E2E_CLUSTER_UP=1 $GO test -tags e2e -count=1 -v -timeout 30m -run "$RUN" .) 2>&1 | tee "$LOGS/test.log" || rc=$?
echo
log "summary after $((SECONDS - start))s (full output in $LOGS/test.log):"
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(ok|FAIL)\s' "$LOGS/test.log" || true
exit $rc

#!/usr/bin/env bash
# make e2e-cluster-up: builds, then runs TestClusterUp of test/e2e (build tag
# e2e): hack/cluster-up over the netns transport brings up one master and
# two workers (test/e2e/testdata/cluster-up.ini), is run a second time
# (nothing may change), and hack/cluster-down takes it down (nothing may be
# left). Runs hack/cluster-down again when it exits, whatever happened.
# Output in _output/cluster/e2e/logs/test.log (kept, with the components'
# logs). CLUSTER_UP_SKIP_BUILD=1 uses _output/bin as it is (or
# E2E_CLUSTER_UP_BIN, a folder of the binaries). Run as root; kubectl (v1.32)
# must be on PATH.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$PATH:/usr/local/go/bin
source "$ROOT/hack/lib.sh"
GO=${GO:-go}
INVENTORY=$ROOT/test/e2e/testdata/cluster-up.ini
LOGS=$ROOT/_output/cluster/e2e/logs

[ "$(id -u)" = 0 ] || die "make e2e-cluster-up needs root (namespaces, containerd, iptables)"
command -v kubectl >/dev/null || die "kubectl (v1.32) must be on PATH"
cleanup() {
	"$ROOT/hack/cluster-down" "$INVENTORY" >/dev/null 2>&1 || log "hack/cluster-down $INVENTORY failed; run it again"
	rm -rf "$ROOT/_output/cluster/e2e-bin"
}
trap cleanup EXIT
mkdir -p "$LOGS"
if [ -z "${CLUSTER_UP_SKIP_BUILD:-}" ]; then
	log "building"
	make -C "$ROOT" build >"$LOGS/build.log" 2>&1 || die "make build failed: see $LOGS/build.log"
fi
log "running TestClusterUp (test/e2e)"
rc=0
(cd "$ROOT/test/e2e" && E2E_CLUSTER_UP=1 $GO test -tags e2e -count=1 -v -timeout 30m -run '^TestClusterUp$' .) 2>&1 | tee "$LOGS/test.log" || rc=$?
echo
log "summary (full output in $LOGS/test.log):"
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(ok|FAIL)\s' "$LOGS/test.log" || true
exit $rc

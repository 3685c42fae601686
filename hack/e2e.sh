#!/usr/bin/env bash
# make e2e: brings up the netns cluster (hack/netns-cluster.sh up, 3 workers
# unless E2E_WORKERS says otherwise), runs the end-to-end suite of test/e2e
# against it with the real kubectl, and takes the cluster down again, also
# when something failed. E2E_KEEP=1 leaves the cluster up; E2E_RUN selects
# tests (go test -run). Exits with the suite's status.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export PATH=$PATH:/usr/local/go/bin
source "$ROOT/hack/lib.sh"
GO=${GO:-go}

command -v kubectl >/dev/null || die "kubectl (v1.32) must be on PATH"
cleanup() {
	if [ -n "${E2E_KEEP:-}" ]; then
		log "E2E_KEEP is set: the cluster stays up (hack/netns-cluster.sh down removes it)"
		return
	fi
	"$ROOT/hack/netns-cluster.sh" down
}
trap cleanup EXIT

"$ROOT/hack/netns-cluster.sh" up "${E2E_WORKERS:-3}" || die "the netns cluster did not come up (see above; logs in $ROOT/_output/netns/logs)"
log "running the end-to-end suite (test/e2e)"
rc=0
(cd "$ROOT/test/e2e" && $GO test -tags e2e -count=1 -v -timeout 60m -run "${E2E_RUN:-.}" .) 2>&1 | tee "$ROOT/_output/netns/logs/e2e.log" || rc=$?
echo
log "summary (full output in _output/netns/logs/e2e.log):"
grep -E '^\s*--- (PASS|FAIL|SKIP)|^(ok|FAIL)\s' "$ROOT/_output/netns/logs/e2e.log" || true
exit $rc

#!/usr/bin/env bash
# Regenerates go.work from the module folders of DESIGN.md.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f go.work go.work.sum
go work init
go work use ./proto ./pkg ./apiserver ./scheduler ./controller-manager ./kubelet ./kube-proxy ./deploy/guestbook ./test/e2e

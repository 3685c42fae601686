// Command kubelet-bench measures the kubelet as issues 6 and 7 ask: a
// real kubelet binary on a private containerd and a real kube-apiserver;
// the pod start latency of 50 pods (target p99 ≤ 1 s, p50 within 1.5× of
// containerd's own create and start of the same containers); then 100
// pods each with an HTTP readiness probe every second, the kubelet's CPU
// over a window (target under 10% of one core), its RSS, and the latency
// of its summary API (target ≤ 50 ms). It writes the kubelet section of a
// Markdown report (make bench writes docs/benchmarks.md). It needs root,
// containerd, runc, the CNI plugins and busybox, as the kubelet's
// integration tests do.
package main

import (
	"context"

	"github.com/coxswain/coxswain/kubelet/internal/bench"
	"github.com/coxswain/coxswain/pkg/benchkit"
)

func main() {
	cfg := bench.DefaultConfig()
	benchkit.Main("kubelet-bench", cfg.AddFlags, nil, func(ctx context.Context) error { return bench.Run(ctx, cfg) })
}

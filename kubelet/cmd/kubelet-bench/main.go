// Command kubelet-bench measures the kubelet as issue 7 asks: a real
// kubelet binary on a private containerd and a real kube-apiserver, 100
// pods each with an HTTP readiness probe every second; the kubelet's CPU
// over a window (target under 10% of one core) and the latency of its
// summary API (target ≤ 50 ms). It writes the kubelet section of a
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

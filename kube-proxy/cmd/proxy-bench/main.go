// Command proxy-bench measures kube-proxy's rule syncs against raw
// iptables-restore (nf_tables and legacy backends, in a private network
// namespace) and its node-local DNS, and writes the kube-proxy section of
// a Markdown report (make bench writes docs/benchmarks.md). Run as root.
package main

import (
	"context"

	"github.com/coxswain/coxswain/kube-proxy/internal/bench"
	"github.com/coxswain/coxswain/pkg/benchkit"
)

func main() {
	cfg := bench.DefaultConfig()
	benchkit.Main("proxy-bench", cfg.AddFlags, nil, func(ctx context.Context) error { return bench.Run(ctx, cfg) })
}

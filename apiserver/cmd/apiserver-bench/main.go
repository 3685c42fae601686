// Command apiserver-bench benchmarks kube-apiserver against raw etcd and
// writes a Markdown report (make bench writes docs/benchmarks.md).
package main

import (
	"context"

	"github.com/coxswain/coxswain/apiserver/internal/bench"
	"github.com/coxswain/coxswain/pkg/benchkit"
)

func main() {
	cfg := bench.DefaultConfig()
	benchkit.Main("apiserver-bench", cfg.AddFlags, cfg.ApplyQuick, func(ctx context.Context) error { return bench.Run(ctx, cfg) })
}

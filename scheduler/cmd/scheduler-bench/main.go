// Command scheduler-bench measures kube-scheduler's throughput through the
// real kube-apiserver and writes the kube-scheduler section of a Markdown
// report (make bench writes docs/benchmarks.md).
package main

import (
	"context"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/scheduler/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	benchkit.Main("scheduler-bench", cfg.AddFlags, nil, func(ctx context.Context) error { return bench.Run(ctx, cfg) })
}

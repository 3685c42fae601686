// Command controller-manager-bench measures kube-controller-manager through the
// real kube-apiserver and writes the kube-controller-manager section of a Markdown
// report (make bench writes docs/benchmarks.md).
package main

import (
	"context"

	"github.com/coxswain/coxswain/controller-manager/internal/bench"
	"github.com/coxswain/coxswain/pkg/benchkit"
)

func main() {
	cfg := bench.DefaultConfig()
	benchkit.Main("controller-manager-bench", cfg.AddFlags, nil, func(ctx context.Context) error { return bench.Run(ctx, cfg) })
}

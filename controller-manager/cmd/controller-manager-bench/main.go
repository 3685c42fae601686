// Command controller-manager-bench measures kube-controller-manager through the
// real kube-apiserver and writes the kube-controller-manager section of a Markdown
// report (make bench writes docs/benchmarks.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/controller-manager/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("controller-manager-bench", flag.ExitOnError)
	cfg.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "controller-manager-bench:", err)
		stop()
		os.Exit(1)
	}
}

// Command apiserver-bench benchmarks kube-apiserver against raw etcd and
// writes a Markdown report (make bench writes docs/benchmarks.md).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/apiserver/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("apiserver-bench", flag.ExitOnError)
	cfg.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg.ApplyQuick(set)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "apiserver-bench:", err)
		stop()
		os.Exit(1)
	}
}

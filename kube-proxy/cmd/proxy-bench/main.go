// Command proxy-bench measures kube-proxy's rule syncs against raw
// iptables-restore (nf_tables and legacy backends, in a private network
// namespace) and its node-local DNS, and writes the kube-proxy section of
// a Markdown report (make bench writes docs/benchmarks.md). Run as root.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/kube-proxy/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("proxy-bench", flag.ExitOnError)
	cfg.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "proxy-bench:", err)
		stop()
		os.Exit(1)
	}
}

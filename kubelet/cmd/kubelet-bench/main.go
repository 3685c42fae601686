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
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/kubelet/internal/bench"
)

func main() {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("kubelet-bench", flag.ExitOnError)
	cfg.AddFlags(fs)
	_ = fs.Parse(os.Args[1:])

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kubelet-bench:", err)
		stop()
		os.Exit(1)
	}
}

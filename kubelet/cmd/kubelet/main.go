// Command kubelet runs a node's pods through containerd and CNI.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/kubelet/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.NewCommand().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

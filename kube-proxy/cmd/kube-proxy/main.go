// Command kube-proxy programs Services on a node and serves node-local DNS.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/kube-proxy/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.NewCommand().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

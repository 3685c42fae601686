// Command kube-controller-manager runs Coxswain's controllers.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/coxswain/coxswain/controller-manager/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.NewCommand().ExecuteContext(ctx); err != nil {
		os.Exit(1)
	}
}

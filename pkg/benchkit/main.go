package benchkit

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Main is the body of every benchmark command's main: it parses the
// command line into the flags addFlags binds, calls parsed (when not nil)
// with the names of the flags given, and runs run until it returns or
// SIGINT/SIGTERM cancels its context, exiting 1 on an error.
func Main(name string, addFlags func(*flag.FlagSet), parsed func(set map[string]bool), run func(context.Context) error) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	addFlags(fs)
	_ = fs.Parse(os.Args[1:])
	if parsed != nil {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		parsed(set)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}

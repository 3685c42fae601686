// Package nsexec runs code inside a network namespace: the proxy's iptables
// commands, netlink calls and listening sockets of a "node" that is a network
// namespace (tests, the benchmark) rather than the whole machine.
package nsexec

import (
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into the network namespace at path
// (a file such as /run/netns/NAME); with an empty path it runs fn directly.
// Commands started by fn (os/exec) and sockets it opens belong to that
// namespace. fn must not start goroutines that expect to be in it.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is unlocked only once it is back in its own namespace;
		// otherwise it exits with this goroutine.
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer func() { _ = orig.Close() }()
		target, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("open network namespace %s: %w", path, err)
			return
		}
		defer func() { _ = target.Close() }()
		if err := netns.Set(target); err != nil {
			errc <- fmt.Errorf("enter network namespace %s: %w", path, err)
			return
		}
		ferr := fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}

// Path returns the file of the named namespace made by `ip netns add NAME`.
func Path(name string) string { return "/run/netns/" + name }

// Package sdnotify tells systemd how a service is doing through the
// sd_notify protocol (systemd's sd_notify(3)): a datagram of newline-separated
// VARIABLE=value assignments ("READY=1", "STOPPING=1") sent to the unix
// datagram socket named by $NOTIFY_SOCKET. systemd sets the variable for a
// unit with Type=notify and holds the unit in "activating" until READY=1
// arrives. A name starting with '@' is a socket in the abstract namespace.
// Without $NOTIFY_SOCKET (not started by systemd, or another service type)
// every call does nothing.
//
// The components send READY=1 once they serve (the apiserver once /readyz
// would answer ok) and STOPPING=1 when they begin to shut down.
package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// States the components send.
const (
	// Ready says start-up is finished.
	Ready = "READY=1"
	// Stopping says the service is shutting down.
	Stopping = "STOPPING=1"
)

// EnvSocket is the environment variable naming the socket.
const EnvSocket = "NOTIFY_SOCKET"

// DefaultInterval is how often a readiness check is retried.
const DefaultInterval = 250 * time.Millisecond

// Send sends the states, joined by newlines in one datagram, to socket (a
// path, or '@' and an abstract name). An empty socket sends nothing.
func Send(socket string, states ...string) error {
	if socket == "" {
		return nil
	}
	if len(states) == 0 {
		return errors.New("sdnotify: no state to send")
	}
	for _, s := range states {
		if !strings.Contains(s, "=") || strings.Contains(s, "\n") {
			return fmt.Errorf("sdnotify: state %q is not one VARIABLE=value line", s)
		}
	}
	if strings.HasPrefix(socket, "vsock:") {
		return fmt.Errorf("sdnotify: %s %q: vsock sockets are not supported", EnvSocket, socket)
	}
	// Go maps a leading '@' to the abstract namespace (a leading NUL byte).
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: dial %s: %w", socket, err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := conn.Write([]byte(strings.Join(states, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: send to %s: %w", socket, err)
	}
	return nil
}

// Check reports nil once the service is ready.
type Check func(ctx context.Context) error

// Notifier sends a service's states to systemd.
type Notifier struct {
	socket   string
	logger   *zap.Logger
	interval time.Duration
}

// New returns a Notifier for the socket in $NOTIFY_SOCKET; logger (nil
// means none) records what was sent and failures, which are never fatal.
func New(logger *zap.Logger) *Notifier {
	return NewForSocket(os.Getenv(EnvSocket), logger)
}

// NewForSocket returns a Notifier for socket ("" disables it).
func NewForSocket(socket string, logger *zap.Logger) *Notifier {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Notifier{socket: socket, logger: logger, interval: DefaultInterval}
}

// Enabled says whether there is a socket to notify.
func (n *Notifier) Enabled() bool { return n.socket != "" }

// Notify sends the states (nothing when disabled).
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() {
		return nil
	}
	if err := Send(n.socket, states...); err != nil {
		return err
	}
	n.logger.Debug("notified systemd", zap.Strings("states", states))
	return nil
}

// Start follows the service's life in a goroutine: it sends READY=1 once
// ready passes (nil means at once; retried every DefaultInterval), and
// STOPPING=1 when ctx ends. The returned stop function ends the goroutine
// (sending STOPPING=1 if READY=1 was sent) and waits for it. Nothing runs
// when the Notifier is disabled.
func (n *Notifier) Start(ctx context.Context, ready Check) (stop func()) {
	if !n.Enabled() {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, ready)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (n *Notifier) run(ctx context.Context, ready Check) {
	if ready != nil {
		t := time.NewTicker(n.interval)
		defer t.Stop()
		var last error
		for {
			err := ready(ctx)
			if err == nil {
				break
			}
			if last == nil || err.Error() != last.Error() {
				n.logger.Debug("not ready yet", zap.Error(err))
			}
			last = err
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err := n.Notify(Ready); err != nil {
		n.logger.Warn("notify systemd of readiness", zap.Error(err))
		return
	}
	n.logger.Info("notified systemd", zap.String("state", Ready))
	<-ctx.Done()
	if err := n.Notify(Stopping); err != nil {
		n.logger.Warn("notify systemd of stopping", zap.Error(err))
	}
}

// HTTPCheckAddr is HTTPCheck for an address "host:port" (a listener's
// Addr); an empty address means there is nothing to ask.
func HTTPCheckAddr(address, path string) Check {
	if address == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return func(context.Context) error { return fmt.Errorf("health address %q: %w", address, err) }
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return func(context.Context) error { return fmt.Errorf("health address %q: %w", address, err) }
	}
	return HTTPCheck(host, n, path)
}

// HTTPCheck passes when GET http://host:port/path answers 200; an
// unspecified host (0.0.0.0, ::, "") is asked on loopback. A zero port
// means there is nothing to ask, and the check passes at once.
func HTTPCheck(host string, port int, path string) Check {
	if port == 0 {
		return nil
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	url := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + path
	client := &http.Client{Timeout: 2 * time.Second}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	}
}

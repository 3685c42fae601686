package sdnotify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Listener is the receiving end of the protocol, as systemd holds it: for
// tests and for supervisors that wait for READY=1.
type Listener struct {
	// Socket is the value to put in $NOTIFY_SOCKET.
	Socket string
	conn   *net.UnixConn
}

// Listen opens a unix datagram socket at path ('@' and a name for the
// abstract namespace).
func Listen(path string) (*Listener, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("sdnotify: listen %s: %w", path, err)
	}
	return &Listener{Socket: path, conn: conn}, nil
}

// Receive returns the states of the next datagram, waiting until ctx ends.
func (l *Listener) Receive(ctx context.Context) ([]string, error) {
	buf := make([]byte, 4096)
	for {
		deadline := time.Now().Add(100 * time.Millisecond)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := l.conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("sdnotify: %w", err)
		}
		n, _, err := l.conn.ReadFromUnix(buf)
		if err == nil {
			return strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n"), nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("sdnotify: receive: %w", err)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("sdnotify: receive: %w", ctx.Err())
		}
	}
}

// WaitFor receives datagrams until one carries state (e.g. READY=1) and
// returns every state seen until then.
func (l *Listener) WaitFor(ctx context.Context, state string) ([]string, error) {
	var seen []string
	for {
		states, err := l.Receive(ctx)
		if err != nil {
			return seen, fmt.Errorf("waiting for %s (seen %q): %w", state, seen, err)
		}
		seen = append(seen, states...)
		for _, s := range states {
			if s == state {
				return seen, nil
			}
		}
	}
}

// Close closes the socket and removes its file.
func (l *Listener) Close() error {
	err := l.conn.Close()
	if !strings.HasPrefix(l.Socket, "@") {
		if rerr := os.Remove(l.Socket); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	return err
}

// Package guestbook is the demo application: the classic Kubernetes
// guestbook frontend. Writes go to the redis master, reads to the replicas;
// it speaks the redis protocol (RESP) itself, so the binary is static and
// has no dependencies.
package guestbook

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// Redis is a minimal redis client: one connection per command.
type Redis struct {
	Addr    string
	Timeout time.Duration
}

// Do runs one command and returns its reply as a string ("" for a nil bulk
// reply).
func (r Redis) Do(ctx context.Context, args ...string) (string, error) {
	var out string
	err := r.roundTrip(ctx, args, func(br *bufio.Reader) (err error) {
		out, err = readReply(br)
		return err
	})
	return out, err
}

// roundTrip dials, sends one command and hands the reply to read.
func (r Redis) roundTrip(ctx context.Context, args []string, read func(*bufio.Reader) error) error {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return fmt.Errorf("redis %s: %w", r.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return fmt.Errorf("redis %s: %w", r.Addr, err)
	}
	return read(bufio.NewReader(conn))
}

func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("redis reply: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("redis reply: empty line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", fmt.Errorf("redis reply: bad length %q", line)
		}
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", fmt.Errorf("redis reply: %w", err)
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redis reply: unsupported type %q", line[0])
}

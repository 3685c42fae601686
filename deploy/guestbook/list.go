package guestbook

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// List runs a command whose reply is an array of bulk strings.
func (r Redis) List(ctx context.Context, args ...string) ([]string, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", r.Addr)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", r.Addr, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fmt.Errorf("redis %s: %w", r.Addr, err)
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("redis reply: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "-") {
		return nil, fmt.Errorf("redis error: %s", line[1:])
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("redis reply: want an array, got %q", line)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		return nil, fmt.Errorf("redis reply: bad array length %q", line)
	}
	out := make([]string, 0, max(n, 0))
	for i := 0; i < n; i++ {
		v, err := readReply(br)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

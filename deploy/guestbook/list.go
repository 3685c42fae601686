package guestbook

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
)

// List runs a command whose reply is an array of bulk strings.
func (r Redis) List(ctx context.Context, args ...string) ([]string, error) {
	var out []string
	err := r.roundTrip(ctx, args, func(br *bufio.Reader) error {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("redis reply: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(line, "-") {
			return fmt.Errorf("redis error: %s", line[1:])
		}
		if !strings.HasPrefix(line, "*") {
			return fmt.Errorf("redis reply: want an array, got %q", line)
		}
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return fmt.Errorf("redis reply: bad array length %q", line)
		}
		out = make([]string, 0, max(n, 0))
		for i := 0; i < n; i++ {
			v, err := readReply(br)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	})
	return out, err
}

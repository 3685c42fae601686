package prober

import (
	"context"
	"time"
)

// tcpProbe is a success when a TCP connection to addr opens in time.
func tcpProbe(ctx context.Context, addr string, timeout time.Duration) (outcome, string, error) {
	d := probeDialer()
	d.Timeout = timeout
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return outFailure, err.Error(), nil
	}
	_ = conn.Close()
	return outSuccess, "", nil
}

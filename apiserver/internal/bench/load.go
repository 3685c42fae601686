package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// OpStats summarises one closed-loop load run.
type OpStats struct {
	Count    int // successful operations
	Errors   int
	Elapsed  time.Duration
	P50, P99 time.Duration
	FirstErr string
	// CPUPerOp is the apiserver's CPU time per successful operation (0 when
	// not measured).
	CPUPerOp time.Duration
}

// Rate is successful operations per second.
func (s OpStats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Count) / s.Elapsed.Seconds()
}

// runLoad runs op for indexes 0..n-1 from conc workers, each starting the
// next operation as soon as its previous one returned, until n operations
// were started or maxTime has passed. newOp makes worker w's operation.
func runLoad(ctx context.Context, conc, n int, maxTime time.Duration, newOp func(w int) func(ctx context.Context, i int) error) OpStats {
	var (
		next     atomic.Int64
		errs     atomic.Int64
		stop     atomic.Bool
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	lat := make([][]time.Duration, conc)
	ops := make([]func(context.Context, int) error, conc)
	for w := range conc {
		ops[w] = newOp(w)
	}
	start := time.Now()
	deadline := start.Add(maxTime)
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, n/conc+1)
			for !stop.Load() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n || time.Now().After(deadline) {
					break
				}
				octx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t := time.Now()
				err := ops[w](octx, i)
				d := time.Since(t)
				cancel()
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
					// A dead server fails fast; give up rather than spin.
					if e := errs.Add(1); e > 100 && e > int64(i)/2 {
						stop.Store(true)
					}
					continue
				}
				mine = append(mine, d)
			}
			lat[w] = mine
		}()
	}
	wg.Wait()
	s := OpStats{Elapsed: time.Since(start), Errors: int(errs.Load())}
	all := slices.Concat(lat...)
	slices.Sort(all)
	s.Count = len(all)
	s.P50, s.P99 = benchkit.Percentile(all, 50), benchkit.Percentile(all, 99)
	if v := firstErr.Load(); v != nil {
		s.FirstErr = v.(string)
	}
	return s
}

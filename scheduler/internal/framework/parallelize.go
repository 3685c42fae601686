package framework

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// DefaultParallelism is how many goroutines evaluate nodes, as upstream's.
const DefaultParallelism = 16

// Parallelizer runs a function over indexes with a bounded number of
// goroutines.
type Parallelizer struct {
	workers int
}

// NewParallelizer returns a parallelizer of workers goroutines
// (DefaultParallelism if workers <= 0).
func NewParallelizer(workers int) Parallelizer {
	if workers <= 0 {
		workers = DefaultParallelism
	}
	return Parallelizer{workers: workers}
}

// Until calls do(i) for i in [0, n) from up to p.workers goroutines, in
// chunks, and returns once all calls have returned or ctx is done (pieces
// not started by then are skipped).
func (p Parallelizer) Until(ctx context.Context, n int, do func(i int)) {
	if n <= 0 {
		return
	}
	chunk := chunkSize(n, p.workers)
	// No more goroutines than the processors that can run them: the work
	// is CPU-bound, so more only adds goroutine starts and switches (the
	// chunks, and so the order pieces are taken in, are unchanged).
	workers := min(p.workers, (n+chunk-1)/chunk, runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := 0; i < n; i++ {
			if ctx.Err() != nil {
				return
			}
			do(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				if ctx.Err() != nil {
					return
				}
				start := int(next.Add(int64(chunk))) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					do(i)
				}
			}
		})
	}
	wg.Wait()
}

// chunkSize is upstream's: about sqrt(n), and at most n/workers+1.
func chunkSize(n, workers int) int {
	s := 1
	for s*s < n {
		s++
	}
	if r := n/workers + 1; r < s {
		s = r
	}
	return max(s, 1)
}

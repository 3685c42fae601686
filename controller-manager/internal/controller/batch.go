package controller

import (
	"errors"
	"sync"
)

// SlowStartBatch calls fn count times, in batches that double from
// initial (1, 2, 4, ...) and run in parallel; it stops after the first
// batch with a failure, so that a systematic error (quota, admission)
// costs few calls. It returns how many calls succeeded and their errors.
func SlowStartBatch(count, initial int, fn func() error) (int, error) {
	remaining := count
	successes := 0
	for batch := min(remaining, initial); batch > 0; batch = min(2*batch, remaining) {
		errs := make([]error, batch)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Go(func() { errs[i] = fn() })
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if err != nil {
				failed++
			}
		}
		successes += batch - failed
		if failed > 0 {
			return successes, errors.Join(errs...)
		}
		remaining -= batch
	}
	return successes, nil
}

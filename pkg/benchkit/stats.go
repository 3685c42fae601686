package benchkit

import (
	"cmp"
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted values by
// the nearest-rank method: the smallest value with at least p% of the
// values at or below it. It returns the zero value for no values.
func Percentile[T cmp.Ordered](sorted []T, p float64) T {
	var zero T
	if len(sorted) == 0 {
		return zero
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[len(sorted)-1]
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Median is the 50th percentile of values; values need not be sorted and
// are not changed.
func Median(values []time.Duration) time.Duration {
	s := slices.Clone(values)
	slices.Sort(s)
	return Percentile(s, 50)
}

// MinDuration is the smallest of values, or 0 for none.
func MinDuration(values []time.Duration) time.Duration {
	if len(values) == 0 {
		return 0
	}
	return slices.Min(values)
}

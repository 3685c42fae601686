package bench

import (
	"strings"
	"testing"
	"time"
)

func TestReportVerdicts(t *testing.T) {
	r := &Report{
		Date:    time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Scale:   &ScaleResult{Replicas: 3000, Elapsed: 3 * time.Second, Baseline: 2 * time.Second, MaxPods: 3001},
		Rollout: &RolloutResult{Replicas: 1000, Elapsed: 40 * time.Second, MinAvailable: 750, MinReady: 749},
		Slices:  &SlicesResult{Services: 1000, Pods: 10000, Change: 9 * time.Second, AfterChange: 4 * time.Second, Total: 13 * time.Second, Slices: 1000},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| Deployment 0 → 3,000 replicas: all pods created | 3.00 s | 2.00 s (the benchmark's own creates, c=64) | ≤ 10 s | FAIL |", // over-created
		"| … most pods seen at once (no over-creation) | 3,001 | | = 3,000 | FAIL |",
		"| rolling update of 1,000 replicas (25% surge, 25% unavailable) | 40.00 s | | ≤ 30 s | FAIL |",
		"| … fewest available (status.availableReplicas) | 750 | | ≥ 750 | PASS |",
		"| … fewest ready pods (counted by the benchmark) | 749 | | ≥ 750 | FAIL |",
		"converged after the last change | 4.00 s | 9.00 s to write the 10,000 changes | ≤ 5 s | PASS |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

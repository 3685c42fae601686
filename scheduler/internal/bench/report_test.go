package bench

import (
	"strings"
	"testing"
	"time"
)

func TestReportVerdicts(t *testing.T) {
	r := &Report{Date: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC), APIServerBin: "`a`", SchedulerBin: "`s`"}
	fast := Result{Bound: 10000, Elapsed: 5 * time.Second, P50: 100 * time.Millisecond, P99: 300 * time.Millisecond,
		SchedulerCPU: 4 * time.Second, SchedulerRSS: 100 << 20, APIServerCPU: 8 * time.Second}
	slow := fast
	slow.Elapsed = 20 * time.Second
	short := fast
	short.Bound = 9000
	r.add(scenarios[0], modeBaseline, fast)
	r.add(scenarios[0], modeScheduler, slow)                                                   // 500/s < 1,000/s
	r.add(scenarios[1], modeScheduler, fast)                                                   // 2,000/s ≥ 300/s
	r.add(Scenario{Name: "x", Title: "partial", Pods: 10000, Target: 1}, modeScheduler, short) // fast but not all bound
	md := r.Markdown()
	for _, want := range []string{
		"| 5,000 nodes, 10,000 pods with requests | 2,000/s | 500/s | ≥ 1,000/s | FAIL |",
		"| 5,000 nodes, 10,000 pods, half with required anti-affinity and topology spread | — | 2,000/s | ≥ 300/s | PASS |",
		"| partial | — | 1,800/s | ≥ 1/s | FAIL |",
		"400 µs", // scheduler CPU per pod: 4 s / 10,000
		"100.0 MiB",
		"| basic | kube-scheduler | 10,000 / 10,000 | 20.00 s |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if len(r.Rows) != 3 {
		t.Errorf("%d rows, want one per scenario", len(r.Rows))
	}
}

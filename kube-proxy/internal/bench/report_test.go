package bench

import (
	"strings"
	"testing"
	"time"
)

func TestMarkdownTargets(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	r := &Report{
		Date:   time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
		Config: *DefaultConfig(),
		Cases: []*CaseResult{
			{Backend: "nft", Services: 1000, Endpoints: 5, Rules: map[string]int{"nat": 100, "filter": 5},
				ColdRaw: ms(100, 110, 120), ColdFull: ms(115, 118, 130), WarmRaw: ms(100), WarmFull: ms(200),
				Partial: ms(10, 20, 60), PartialRaw: ms(5), PartialBytes: []int{900}, IdleCPU: 0, IdleWindow: 20 * time.Second},
			{Backend: "nft", Services: 10000, Endpoints: 5, RawOverLimit: true, FlushRaw: ms(4000), FlushFull: ms(4400),
				Partial: ms(300), PartialOwn: ms(2), PartialRaw: ms(200), PartialBytes: []int{900}},
		},
		DNS: &DNSResult{Services: 10000, Clients: 16, Duration: 10 * time.Second, Queries: 300000, P50: time.Millisecond, P99: 4 * time.Millisecond},
	}
	md := r.Markdown()
	for _, want := range []string{
		"| 1,000 Services, nf_tables: full sync (cold) / raw restore | 1.07× | ≤ 1.2× | PASS |",
		"| 1,000 Services, nf_tables: full sync (warm) / raw restore | 2.00× | ≤ 1.2× | FAIL |",
		"| 1,000 Services, nf_tables: sync after one endpoint change, p99 | 60.0 ms | ≤ 50 ms | FAIL |",
		"| 1,000 Services, nf_tables: proxy CPU between syncs | 0.00% of a core | ≤ 1% | PASS |",
		"| 10,000 Services, nf_tables: full sync (cold) / raw restore | raw restore > 15m0s: not timed | ≤ 1.2× | — |",
		"| 10,000 Services, nf_tables: full sync (cold, flushing restore, see 1) / raw flushing restore | 1.10× | ≤ 1.2× | PASS (a stand-in: the --noflush restore is not timed) |",
		"| nf_tables | 10,000 | 4.00 s | 4.40 s | 1.10× |",
		"| 10,000 Services, nf_tables: sync after one endpoint change, p99 | 300.0 ms | ≤ 1 s | PASS |",
		"| 10,000 Services, nf_tables: the proxy's own part of that sync (outside iptables-restore), p99 | 2.00 ms | ≤ 1 s | PASS (for information: what the proxy adds to the restore) |",
		"| DNS, 10,000 Services: queries/s | 30,000/s | ≥ 20,000/s | PASS |",
		"| DNS, 10,000 Services: p99 latency | 4.00 ms | ≤ 5 ms | PASS |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

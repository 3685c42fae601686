package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Report is the run's results.
type Report struct {
	Date     time.Time
	Quick    bool
	Machine  benchkit.Machine
	Config   Config
	Versions []string
	// LoadStart and LoadEnd are the load averages (1, 5, 15 min) around the run.
	LoadStart, LoadEnd string
	Cases              []*CaseResult
	DNS                *DNSResult
}

// Targets of issue 8.
const (
	fullRatioTarget  = 1.2
	partialSmall     = 50 * time.Millisecond // up to 1,000 Services
	partialLarge     = time.Second           // above
	idleShareTarget  = 0.01                  // of one core
	dnsQPSTarget     = 20000
	dnsLatencyTarget = 5 * time.Millisecond
)

func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return benchkit.Percentile(s, 99)
}

func passFail(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

func ratio(a, b []time.Duration) (float64, bool) {
	if len(a) == 0 || len(b) == 0 {
		return 0, false
	}
	return float64(benchkit.Median(a)) / float64(benchkit.Median(b)), true
}

func partialTarget(n int) time.Duration {
	if n <= 1000 {
		return partialSmall
	}
	return partialLarge
}

func backendName(b string) string {
	if b == "legacy" {
		return "legacy"
	}
	return "nf_tables"
}

// Markdown renders the kube-proxy section of docs/benchmarks.md.
func (r *Report) Markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := r.Config
	w("# kube-proxy benchmark\n\n")
	w("Reproduce with `go run ./kube-proxy/cmd/proxy-bench -out docs/benchmarks.md` as root (%s). ", map[bool]string{true: "this was a `-quick` smoke run", false: "about ten minutes, and about half an hour more for nf_tables at 10,000 Services, whose raw restore alone takes minutes"}[r.Quick])
	w("A smoke run of about a minute: `go run ./kube-proxy/cmd/proxy-bench -quick -out /tmp/bench.md`. `-help` lists the flags.\n\n")
	w("- Machine: %s\n", r.Machine)
	w("- Date: %s\n", r.Date.Format("2006-01-02 15:04 UTC"))
	w("- iptables: %s\n", strings.Join(r.Versions, "; "))
	if r.LoadStart != "" {
		w("- Load average (1, 5, 15 min) at the start: %s; at the end: %s. The machine is shared: other work moves every figure, the ratios of sections 1 and 2 most (raw and proxy runs alternate, so both see it).\n", r.LoadStart, r.LoadEnd)
	}
	w("- The proxier runs in the benchmark's process, fed Services and EndpointSlices directly (hand-filled informer caches, which is what its sync reads); its rules go into a private network namespace made for each measure and deleted after it.\n\n")

	w("## Targets\n\n| check | figure | target | result |\n| --- | ---: | ---: | --- |\n")
	for _, c := range r.Cases {
		name := fmt.Sprintf("%s Services, %s", benchkit.Num(int64(c.Services)), backendName(c.Backend))
		for _, v := range []struct {
			what         string
			proxy, raw   []time.Duration
			overRaw, ovF bool
		}{{"cold", c.ColdFull, c.ColdRaw, c.RawOverLimit, c.FullOverLimit}, {"warm", c.WarmFull, c.WarmRaw, c.RawOverLimit, c.FullOverLimit}} {
			x, ok := ratio(v.proxy, v.raw)
			switch {
			case ok:
				w("| %s: full sync (%s) / raw restore | %.2f× | ≤ %.1f× | %s |\n", name, v.what, x, fullRatioTarget, passFail(x <= fullRatioTarget))
			case v.ovF:
				w("| %s: full sync (%s) / raw restore | full sync > %v | ≤ %.1f× | FAIL |\n", name, v.what, cfg.Limit, fullRatioTarget)
			default:
				w("| %s: full sync (%s) / raw restore | raw restore > %v: not timed | ≤ %.1f× | — |\n", name, v.what, cfg.Limit, fullRatioTarget)
			}
		}
		if x, ok := ratio(c.FlushFull, c.FlushRaw); ok {
			w("| %s: full sync (cold, flushing restore, see 1) / raw flushing restore | %.2f× | ≤ %.1f× | %s (a stand-in: the --noflush restore is not timed) |\n", name, x, fullRatioTarget, passFail(x <= fullRatioTarget))
		}
		t := partialTarget(c.Services)
		w("| %s: sync after one endpoint change, p99 | %s | ≤ %s | %s |\n", name, benchkit.FormatDuration(p99(c.Partial)), benchkit.FormatTarget(t), passFail(len(c.Partial) > 0 && p99(c.Partial) <= t))
		if len(c.PartialOwn) > 0 {
			w("| %s: the proxy's own part of that sync (outside iptables-restore), p99 | %s | ≤ %s | %s (for information: what the proxy adds to the restore) |\n", name, benchkit.FormatDuration(p99(c.PartialOwn)), benchkit.FormatTarget(t), passFail(p99(c.PartialOwn) <= t))
		}
		if c.IdleWindow > 0 {
			share := float64(c.IdleCPU) / float64(c.IdleWindow)
			w("| %s: proxy CPU between syncs | %.2f%% of a core | ≤ %.0f%% | %s |\n", name, 100*share, 100*idleShareTarget, passFail(share <= idleShareTarget))
		}
	}
	if d := r.DNS; d != nil {
		w("| DNS, %s Services: queries/s | %s/s | ≥ %s/s | %s |\n", benchkit.Num(int64(d.Services)), benchkit.Num(int64(d.QPS())), benchkit.Num(dnsQPSTarget), passFail(d.QPS() >= dnsQPSTarget))
		w("| DNS, %s Services: p99 latency | %s | ≤ %s | %s |\n", benchkit.Num(int64(d.Services)), benchkit.FormatDuration(d.P99), benchkit.FormatTarget(dnsLatencyTarget), passFail(d.P99 <= dnsLatencyTarget && d.Failed == 0))
	}

	w("\n## 1. Full sync against a raw iptables-restore\n\n")
	w("Each Service has one TCP port (every tenth is a NodePort) and %d ready endpoints on three nodes, in 20 namespaces; past 1,000 endpoints the per-service chains carry no comments, as upstream's \"large cluster\" mode. ", cfg.Endpoints)
	w("A full sync is the proxy's whole `Sync`: listing the caches and generating every rule in memory, at a start (cold) meanwhile `iptables-save` (stale chains, jump rules already there) and go-iptables making the missing top-level chains and jump rules, then one `iptables-restore -w --noflush` that reads the text while it is generated; a warm full sync generates again only the Services whose objects changed (by resourceVersion) and writes every chain. ")
	w("The raw restore is the same `iptables-restore -w --noflush` of the byte-identical text, alone. Cold: into a new, empty namespace each time (a node's first start); warm: over the proxy's own ruleset (the periodic resync, every `--sync-period`). Median of %d, raw and proxy alternating which goes first (a single run of each where the first raw restore took over %v, marked *1 run*); each capped at %v.\n\n", cfg.Reps, cfg.Slow, cfg.Limit)
	w("| backend | Services | rules (nat + filter) | restore input | raw cold | proxy cold | ratio | raw warm | proxy warm | ratio |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range r.Cases {
		cell := func(d []time.Duration, over bool) string {
			if len(d) == 0 {
				if over {
					return fmt.Sprintf("> %v", cfg.Limit)
				}
				return "—"
			}
			return benchkit.FormatDuration(benchkit.Median(d))
		}
		rc := func(a, b []time.Duration) string {
			if x, ok := ratio(a, b); ok {
				return fmt.Sprintf("%.2f×", x)
			}
			return "—"
		}
		services := benchkit.Num(int64(c.Services))
		if c.Reps == 1 && cfg.Reps > 1 {
			services += " (*1 run*)"
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", backendName(c.Backend), services,
			benchkit.Num(int64(c.Rules["nat"]+c.Rules["filter"])), benchkit.FormatBytes(int64(c.Bytes)),
			cell(c.ColdRaw, c.RawOverLimit), cell(c.ColdFull, c.FullOverLimit), rc(c.ColdFull, c.ColdRaw),
			cell(c.WarmRaw, c.RawOverLimit), cell(c.WarmFull, c.FullOverLimit), rc(c.WarmFull, c.WarmRaw))
	}
	w("\nThe namespace of sections 2 and 3 was loaded by the proxy's first sync through a flushing `iptables-restore` (no `--noflush`; the namespace is the benchmark's alone), which is fast with both backends: ")
	var loads []string
	for _, c := range r.Cases {
		loads = append(loads, fmt.Sprintf("%s at %s Services %s", backendName(c.Backend), benchkit.Num(int64(c.Services)), benchkit.FormatDuration(c.Load)))
	}
	w("%s.", strings.Join(loads, ", "))
	for _, c := range r.Cases {
		if c.Backend == "nft" && (c.RawOverLimit || c.FullOverLimit) {
			w(" With nf_tables, `iptables-nft-restore --noflush` (iptables 1.8.9) costs time in proportion to the rules written times the chains in the table, so a full ruleset of %s Services does not load within %v even alone; that is the iptables binary, and the reason the proxy must not rewrite what did not change.", benchkit.Num(int64(c.Services)), cfg.Limit)
			break
		}
	}
	var flushed []*CaseResult
	for _, c := range r.Cases {
		if len(c.FlushRaw) > 0 || len(c.FlushFull) > 0 {
			flushed = append(flushed, c)
		}
	}
	if len(flushed) > 0 {
		w("\n\nWhere the `--noflush` restore does not fit in the limit, what the proxy adds to a restore is timed with flushing restores instead (no `--noflush`: each table is replaced whole, which kube-proxy never does on a node but which loads the same ruleset in seconds): the proxy's whole cold full sync (listing, generating, `iptables-save`, the jump rules, the restore) against the raw flushing restore of the byte-identical text, each into a new namespace, median of %d, alternating. It stands in for the cold ratio above, which cannot be timed here.\n\n", cfg.Reps)
		w("| backend | Services | raw flushing restore | proxy full sync (flushing) | ratio |\n| --- | ---: | ---: | ---: | ---: |\n")
		for _, c := range flushed {
			x, _ := ratio(c.FlushFull, c.FlushRaw)
			w("| %s | %s | %s | %s | %.2f× |\n", backendName(c.Backend), benchkit.Num(int64(c.Services)),
				benchkit.FormatDuration(benchkit.Median(c.FlushRaw)), benchkit.FormatDuration(benchkit.Median(c.FlushFull)), x)
		}
	}
	w("\n\n## 2. Sync after one endpoint change\n\n")
	w("%d times, one endpoint of a different Service is replaced by a new pod IP in the cache, the proxy is told, and its `Sync` is timed: a partial sync, which writes that Service's KUBE-SVC-*/KUBE-SEP-* chains and deletes the old endpoint's chain, and rewrites a top-level chain (KUBE-SERVICES, KUBE-NODEPORTS, the filter chains) only when its rules changed, which an endpoint change within a Service leaves alone. The raw figure is `iptables-restore -w --noflush` of the same text, alone, right after.\n\n", cfg.Changes)
	w("| backend | Services | proxy p50 | proxy p99 | proxy's own part p50 | own part p99 | raw restore p50 | raw restore p99 | restore input (median) | target (p99) | result |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, c := range r.Cases {
		sizes := slices.Clone(c.PartialBytes)
		slices.Sort(sizes)
		t := partialTarget(c.Services)
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", backendName(c.Backend), benchkit.Num(int64(c.Services)),
			benchkit.FormatDuration(benchkit.Median(c.Partial)), benchkit.FormatDuration(p99(c.Partial)),
			benchkit.FormatDuration(benchkit.Median(c.PartialOwn)), benchkit.FormatDuration(p99(c.PartialOwn)),
			benchkit.FormatDuration(benchkit.Median(c.PartialRaw)), benchkit.FormatDuration(p99(c.PartialRaw)),
			benchkit.FormatBytes(int64(benchkit.Percentile(sizes, 50))), benchkit.FormatTarget(t), passFail(len(c.Partial) > 0 && p99(c.Partial) <= t))
	}
	w("\nThe proxy's own part is the sync's time outside its `iptables-restore` call (listing, generating that Service's rules, comparing; the top-level chains are assembled again only when a changed Service's part of them changed). ")
	w("With the legacy backend every restore, however small, reads the whole table out of the kernel and writes it back (`iptables-legacy-restore` through libiptc, one `IPT_SO_SET_REPLACE` of the whole table blob, checked entry by entry), so its partial sync costs in proportion to the whole ruleset, whatever the proxy writes: the raw restore column is that floor, the same for upstream's kube-proxy with the same rules (these already leave out upstream's per-endpoint comments past 1,000 endpoints). With nf_tables a small restore is a small transaction.\n")

	w("\n## 3. The proxy's CPU between syncs\n\n")
	w("The proxier runs as in kube-proxy (`Run`: full resync every 30 s, jump checks every minute, syncs on change); once its first sync is done, the process's user + system CPU (from /proc) is read over %v with no change. iptables children do not count: none runs then.\n\n", cfg.Idle)
	w("| backend | Services | CPU in the window | share of a core |\n| --- | ---: | ---: | ---: |\n")
	for _, c := range r.Cases {
		if c.IdleWindow == 0 {
			w("| %s | %s | not measured (its first sync does not fit in the limit) | — |\n", backendName(c.Backend), benchkit.Num(int64(c.Services)))
			continue
		}
		w("| %s | %s | %s | %.2f%% |\n", backendName(c.Backend), benchkit.Num(int64(c.Services)), benchkit.FormatDuration(c.IdleCPU), 100*float64(c.IdleCPU)/float64(c.IdleWindow))
	}

	if d := r.DNS; d != nil {
		w("\n## 4. Node-local DNS\n\n")
		w("The DNS server (miekg/dns, UDP) answers from caches holding %s Services with %d endpoints each, on 127.0.0.1; %d closed-loop clients in the same process, each with its own UDP socket, send A queries for random Service names (`svc-N.bench-M.svc.cluster.local.`) for %v after a 0.5 s warm-up. A failure is a timeout (1 s) or an answer that is not NOERROR with a record. The server and the load generator share the machine's %d cores.\n\n", benchkit.Num(int64(d.Services)), cfg.Endpoints, d.Clients, d.Duration, r.Machine.Cores)
		w("| queries | queries/s | failed | p50 | p99 | max | process CPU per query (server + generator) |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		per := time.Duration(0)
		if d.Queries > 0 {
			per = d.CPU / time.Duration(d.Queries)
		}
		w("| %s | %s/s | %s | %s | %s | %s | %s |\n", benchkit.Num(int64(d.Queries)), benchkit.Num(int64(d.QPS())), benchkit.Num(int64(d.Failed)),
			benchkit.FormatDuration(d.P50), benchkit.FormatDuration(d.P99), benchkit.FormatDuration(d.Max), benchkit.FormatDuration(per))
	}
	return b.String()
}

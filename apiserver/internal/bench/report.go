package bench

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Report is everything one run measured.
type Report struct {
	Date    time.Time
	Quick   bool
	Config  Config
	Machine benchkit.Machine
	// APIServerBin says which kube-apiserver binary ran.
	APIServerBin string

	PodBytes       int // the typical pod, as sent
	StoredPodBytes int // as the apiserver returned it (defaulted, with uid, timestamps)
	Creates        []CreateLevel
	Rest           *RestResult
	Fanout         *FanoutResult
	Scale          *ScaleResult
	// Problems are errors and shortfalls worth a reader's attention.
	Problems []string
}

// Targets.
const (
	targetCreateConcurrency = 64
	targetCreateRatio       = 0.5
	targetCreateP99         = 50 * time.Millisecond
	targetFanoutP99         = 100 * time.Millisecond
	targetFullList          = time.Second
	targetLabelList         = 20 * time.Millisecond
	targetRSS               = 2 << 30
	targetRestRatio         = 0.8
	targetTableList         = 300 * time.Millisecond
	targetProtoList         = 150 * time.Millisecond
)

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "FAIL"
}

// Markdown renders the whole report.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# kube-apiserver benchmark\n\n")
	b.WriteString("Reproduce with `make bench` (builds `_output/bin/kube-apiserver`, then runs\n" +
		"`go run ./apiserver/cmd/apiserver-bench -out docs/benchmarks.md`, a few minutes). A smoke run of\n" +
		"about ten seconds: `go run ./apiserver/cmd/apiserver-bench -quick -out /tmp/bench.md`.\n" +
		"`-help` lists the flags that scale each phase.\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Date: %s\n", r.Date.Format("2006-01-02 15:04 MST"))
	if r.APIServerBin != "" {
		fmt.Fprintf(&b, "- kube-apiserver: %s\n", r.APIServerBin)
	}
	b.WriteString("\n")
	if r.Quick {
		b.WriteString("> **Quick smoke run**: small counts; the figures say the benchmark works, not how fast the apiserver is.\n\n")
	}
	b.WriteString(r.Tables())
	b.WriteString("## Notes\n\n")
	for _, n := range r.notes() {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems seen in this run:\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", strings.ReplaceAll(p, "\n", " "))
		}
	}
	return b.String()
}

// Tables renders the measurement tables (also printed to stdout).
func (r *Report) Tables() string {
	var b strings.Builder
	b.WriteString(r.targetsTable())
	if len(r.Creates) > 0 {
		b.WriteString(r.createsTable())
	}
	if r.Rest != nil {
		b.WriteString(r.restTable())
	}
	if r.Fanout != nil {
		b.WriteString(r.fanoutTable())
	}
	if r.Scale != nil {
		b.WriteString(r.scaleTable())
	}
	return b.String()
}

type targetRow struct{ check, figure, target, result string }

func (r *Report) targets() []targetRow {
	var rows []targetRow
	for _, l := range r.Creates {
		if l.Concurrency != targetCreateConcurrency {
			continue
		}
		rows = append(rows,
			targetRow{fmt.Sprintf("creates at c=%d: apiserver / raw etcd throughput", l.Concurrency), pct(l.Ratio()), "≥ " + pct(targetCreateRatio), verdict(l.APIServer.Count > 0 && l.Ratio() >= targetCreateRatio)},
			targetRow{fmt.Sprintf("creates at c=%d: p99 latency", l.Concurrency), benchkit.FormatDuration(l.APIServer.P99), "≤ " + benchkit.FormatTarget(targetCreateP99), verdict(l.APIServer.Count > 0 && l.APIServer.P99 <= targetCreateP99)})
	}
	if x := r.Rest; x != nil {
		rows = append(rows,
			targetRow{fmt.Sprintf("REST creates at c=%d: REST / gRPC throughput", x.Concurrency), pct(x.Ratio()), "≥ " + pct(targetRestRatio), verdict(x.restCreatesOK())},
			targetRow{fmt.Sprintf("`kubectl get pods -A` on %s pods: Table, unpaged (median)", benchkit.Num(int64(x.TableRows))), benchkit.FormatDuration(benchkit.Median(x.TableFull)), "≤ " + benchkit.FormatTarget(targetTableList), verdict(len(x.TableFull) > 0 && benchkit.Median(x.TableFull) <= targetTableList)},
			targetRow{fmt.Sprintf("`kubectl get pods -A` on %s pods: Table, all pages of %d (median)", benchkit.Num(int64(x.PagedRows)), restPageLimit), benchkit.FormatDuration(benchkit.Median(x.TablePaged)), "≤ " + benchkit.FormatTarget(targetTableList), verdict(len(x.TablePaged) > 0 && benchkit.Median(x.TablePaged) <= targetTableList)},
			targetRow{fmt.Sprintf("list of %s pods as protobuf (median)", benchkit.Num(int64(x.ProtoItems))), benchkit.FormatDuration(benchkit.Median(x.Protobuf)), "≤ " + benchkit.FormatTarget(targetProtoList), verdict(len(x.Protobuf) > 0 && benchkit.Median(x.Protobuf) <= targetProtoList)})
	}
	if f := r.Fanout; f != nil {
		rows = append(rows,
			targetRow{"watch fan-out: events received", fmt.Sprintf("%s / %s", benchkit.Num(f.Received), benchkit.Num(f.Expected)), "all", verdict(f.Expected > 0 && f.Received >= f.Expected)},
			targetRow{"watch fan-out: p99 delay", benchkit.FormatDuration(f.P99), "≤ " + benchkit.FormatTarget(targetFanoutP99), verdict(f.Received > 0 && f.P99 <= targetFanoutP99)})
	}
	if s := r.Scale; s != nil {
		rows = append(rows,
			targetRow{fmt.Sprintf("full list of %s pods (median)", benchkit.Num(int64(s.ListItems))), benchkit.FormatDuration(benchkit.Median(s.FullList)), "≤ " + benchkit.FormatTarget(targetFullList), verdict(len(s.FullList) > 0 && benchkit.Median(s.FullList) <= targetFullList)},
			targetRow{fmt.Sprintf("label-selected list, %d items (median)", s.LabelItems), benchkit.FormatDuration(benchkit.Median(s.LabelList)), "≤ " + benchkit.FormatTarget(targetLabelList), verdict(len(s.LabelList) > 0 && benchkit.Median(s.LabelList) <= targetLabelList)},
			targetRow{fmt.Sprintf("apiserver RSS with %s pods", benchkit.Num(int64(s.Load.Count))), benchkit.FormatBytes(s.RSS), "≤ 2 GiB", verdict(s.RSS > 0 && s.RSS <= targetRSS)})
	}
	return rows
}

func (r *Report) targetsTable() string {
	rows := r.targets()
	if len(rows) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("## Targets\n\n| check | figure | target | result |\n| --- | ---: | ---: | --- |\n")
	for _, t := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.check, t.figure, t.target, t.result)
	}
	b.WriteString("\n")
	return b.String()
}

func countCell(s OpStats) string {
	c := benchkit.Num(int64(s.Count))
	if s.Errors > 0 {
		c += fmt.Sprintf(" (%d errors)", s.Errors)
	}
	return c
}

func (r *Report) createsTable() string {
	var b strings.Builder
	b.WriteString("## 1. Pod creates vs raw etcd puts\n\n")
	stored := ""
	if r.StoredPodBytes > 0 {
		stored = fmt.Sprintf(", %s as stored after defaulting", benchkit.FormatBytes(int64(r.StoredPodBytes)))
	}
	fmt.Fprintf(&b, "A pod of %s in protobuf%s (labels, annotations, two containers with env, ports, resources, "+
		"volume mounts and probes) created through the gRPC client in namespace `default` under unique names; closed loop, "+
		"one gRPC connection per %d workers; at most %s creates per level (%s at c=1) or %v. Baseline: etcd Put of the same "+
		"encoded bytes under unique keys in `/bench/raw/`, one etcd client per %d workers, same counts, right before.\n\n",
		benchkit.FormatBytes(int64(r.PodBytes)), stored, workersPerConn, benchkit.Num(int64(r.Config.Creates)), benchkit.Num(int64(r.Config.CreatesSerial)),
		r.Config.CreateMaxTime, workersPerConn)
	b.WriteString("| concurrency | apiserver creates | creates/s | p50 | p99 | apiserver CPU/create | etcd puts | puts/s | p50 | p99 | apiserver / etcd | target | result |\n")
	b.WriteString("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
	for _, l := range r.Creates {
		target, result := "—", "—"
		if l.Concurrency == targetCreateConcurrency {
			target = fmt.Sprintf("≥ %s, p99 ≤ %s", pct(targetCreateRatio), benchkit.FormatTarget(targetCreateP99))
			result = verdict(l.APIServer.Count > 0 && l.Ratio() >= targetCreateRatio && l.APIServer.P99 <= targetCreateP99)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			l.Concurrency, countCell(l.APIServer), rate(l.APIServer.Rate()), benchkit.FormatDuration(l.APIServer.P50), benchkit.FormatDuration(l.APIServer.P99), benchkit.FormatDuration(l.APIServer.CPUPerOp),
			countCell(l.Etcd), rate(l.Etcd.Rate()), benchkit.FormatDuration(l.Etcd.P50), benchkit.FormatDuration(l.Etcd.P99), pct(l.Ratio()), target, result)
	}
	b.WriteString("\n")
	return b.String()
}

func (r *Report) fanoutTable() string {
	f := r.Fanout
	var b strings.Builder
	b.WriteString("## 3. Watch fan-out\n\n")
	fmt.Fprintf(&b, "%s watches on pods in namespace `%s` (from a list's resourceVersion, spread over %d gRPC connections), "+
		"then %d writers creating %s pods/s for %v (creates not sent within %v are dropped). Watchers use %s. Delay = when a watcher received the ADDED event − when the "+
		"create was acknowledged to its writer (clamped to 0 when the event came first).\n\n",
		benchkit.Num(int64(f.Watchers)), fanoutNS, r.Config.WatchClients, r.Config.Writers, benchkit.Num(int64(f.RequestedHz)), r.Config.WatchDuration, r.Config.WatchMaxTime, watchMode(f.RawWatch))
	b.WriteString("| figure | value | target | result |\n| --- | ---: | ---: | --- |\n")
	row := func(fig, val, target, result string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", fig, val, target, result)
	}
	row("watchers", benchkit.Num(int64(f.Watchers)), "—", "—")
	w := fmt.Sprintf("%s of %s at %s (requested %s)", benchkit.Num(int64(f.Writes)), benchkit.Num(int64(f.Planned)), rate(f.AchievedHz), rate(float64(f.RequestedHz)))
	if f.WriteErrors > 0 {
		w += fmt.Sprintf(", %d errors", f.WriteErrors)
	}
	row("creates acknowledged", w, "—", "—")
	row("ADDED events received / expected", fmt.Sprintf("%s / %s", benchkit.Num(f.Received), benchkit.Num(f.Expected)), "all", verdict(f.Expected > 0 && f.Received >= f.Expected))
	row("delay p50", benchkit.FormatDuration(f.P50), "—", "—")
	row("delay p99", benchkit.FormatDuration(f.P99), "≤ "+benchkit.FormatTarget(targetFanoutP99), verdict(f.Received > 0 && f.P99 <= targetFanoutP99))
	row("delay max", benchkit.FormatDuration(f.Max), "—", "—")
	row("events before the ack (clamped to 0)", benchkit.Num(f.Negative), "—", "—")
	if f.Span > 0 {
		cores := func(d time.Duration) string {
			return fmt.Sprintf("%s (%.2f cores)", benchkit.FormatDuration(d), d.Seconds()/f.Span.Seconds())
		}
		row(fmt.Sprintf("apiserver CPU over the %s from first write to last event", benchkit.FormatDuration(f.Span)), cores(f.APIServerCPU), "—", "—")
		row("benchmark process CPU (watchers, writers, etcd) over the same time", cores(f.BenchCPU), "—", "—")
	}
	if f.WatchErrors > 0 {
		row("watches ended by an error", benchkit.Num(int64(f.WatchErrors)), "0", "FAIL")
	}
	b.WriteString("\n")
	return b.String()
}

func (x *RestResult) restCreatesOK() bool {
	return x.Creates.Count > 0 && x.GRPC.Count > 0 && x.Ratio() >= targetRestRatio
}

func (r *Report) restTable() string {
	x := r.Rest
	var b strings.Builder
	b.WriteString("## 2. REST API: creates over HTTP/2 and `kubectl get pods -A`\n\n")
	grpcFrom := "of section 1"
	if x.GRPCHere {
		grpcFrom = "measured in this phase right before (the creates phase did not run at that concurrency), in namespace `default`"
	}
	fmt.Fprintf(&b, "The typical pod of section 1, POSTed as JSON (%s bodies) to `/api/v1/namespaces/%s/pods` under unique names at c=%d "+
		"with Go's `net/http` client (%s, the admin kubeconfig's client certificate, one connection per %d workers); closed loop, "+
		"at most %s creates or %v, as in section 1. Compared with the gRPC creates at c=%d %s.\n\n",
		benchkit.FormatBytes(int64(x.BodyBytes)), restNS, x.Concurrency, protoName(x.Proto), workersPerConn, benchkit.Num(int64(r.Config.Creates)), r.Config.CreateMaxTime, x.Concurrency, grpcFrom)
	b.WriteString("| client | creates | creates/s | p50 | p99 | apiserver CPU/create |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, c := range []struct {
		name string
		s    OpStats
	}{{"gRPC, protobuf", x.GRPC}, {"REST, JSON over " + protoName(x.Proto), x.Creates}} {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", c.name, countCell(c.s), rate(c.s.Rate()), benchkit.FormatDuration(c.s.P50), benchkit.FormatDuration(c.s.P99), benchkit.FormatDuration(c.s.CPUPerOp))
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "Then every pod in the cluster is deleted through gRPC (%s pods of the earlier phases, in %s%s) and %s pods of %s are created "+
		"through gRPC at c=%d, spread over the namespaces `%s0` … `%s%d`, so that `GET /api/v1/pods` returns exactly those. "+
		"Each list is timed, over one warm HTTP/2 connection as kubectl uses, from sending the request to reading the body's last byte on loopback; "+
		"the Table requests send kubectl's `Accept` header (`%s`). kubectl itself asks for pages of `limit=%d` and follows `continue`: the paged figure is "+
		"the sum of the pages' times of one walk (the client's JSON parsing between pages is not counted).\n\n",
		benchkit.Num(int64(x.Cleared)), benchkit.FormatDuration(x.ClearTime), leftNote(x.ClearLeft), benchkit.Num(int64(x.ListPods)), benchkit.FormatBytes(int64(x.PodBytes)), r.Config.ScaleConcurrency,
		restListNS, restListNS, restListNSs-1, tableAccept, restPageLimit)
	b.WriteString("| figure | value | target | result |\n| --- | ---: | ---: | --- |\n")
	row := func(fig, val, target, result string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", fig, val, target, result)
	}
	row(fmt.Sprintf("REST / gRPC create throughput at c=%d", x.Concurrency), pct(x.Ratio()), "≥ "+pct(targetRestRatio), verdict(x.restCreatesOK()))
	row("pods created for the lists", fmt.Sprintf("%s in %s (%s, p99 %s)", countCell(x.Load), benchkit.FormatDuration(x.Load.Elapsed), rate(x.Load.Rate()), benchkit.FormatDuration(x.Load.P99)), "—", "—")
	minMed := func(ds []time.Duration) string {
		return fmt.Sprintf("%s / %s", benchkit.FormatDuration(benchkit.MinDuration(ds)), benchkit.FormatDuration(benchkit.Median(ds)))
	}
	row(fmt.Sprintf("Table, unpaged: %s rows, %s (min / median of %d)", benchkit.Num(int64(x.TableRows)), benchkit.FormatBytes(int64(x.TableBytes)), len(x.TableFull)),
		minMed(x.TableFull), "≤ "+benchkit.FormatTarget(targetTableList), verdict(len(x.TableFull) > 0 && benchkit.Median(x.TableFull) <= targetTableList))
	row(fmt.Sprintf("Table, %d pages of `limit=%d`: %s rows, %s (min / median of %d walks; one page: median %s, first page %s, last page %s)",
		x.Pages, restPageLimit, benchkit.Num(int64(x.PagedRows)), benchkit.FormatBytes(int64(x.PagedBytes)), len(x.TablePaged), benchkit.FormatDuration(benchkit.Median(x.PageTimes)), benchkit.FormatDuration(benchkit.Median(x.FirstPages)), benchkit.FormatDuration(benchkit.Median(x.LastPages))),
		minMed(x.TablePaged), "≤ "+benchkit.FormatTarget(targetTableList), verdict(len(x.TablePaged) > 0 && benchkit.Median(x.TablePaged) <= targetTableList))
	row(fmt.Sprintf("`application/vnd.kubernetes.protobuf`, unpaged: %s items, %s (min / median of %d)", benchkit.Num(int64(x.ProtoItems)), benchkit.FormatBytes(int64(x.ProtoBytes)), len(x.Protobuf)),
		minMed(x.Protobuf), "≤ "+benchkit.FormatTarget(targetProtoList), verdict(len(x.Protobuf) > 0 && benchkit.Median(x.Protobuf) <= targetProtoList))
	switch {
	case x.Kubectl > 0:
		val := fmt.Sprintf("%s (%s lines of output)", benchkit.FormatDuration(x.Kubectl), benchkit.Num(int64(x.KubectlLines)))
		if x.KubectlNote != "" {
			val = fmt.Sprintf("%s, %s", benchkit.FormatDuration(x.Kubectl), x.KubectlNote)
		}
		row(fmt.Sprintf("`%s get pods -A`, once: wall time with process start, discovery into an empty cache, the pages and printing", x.KubectlPath),
			strings.ReplaceAll(val, "|", "\\|"), "—", "—")
	case x.KubectlNote != "":
		row("`kubectl get pods -A`", x.KubectlNote, "—", "—")
	}
	b.WriteString("\n")
	return b.String()
}

func protoName(p string) string {
	if p == "" {
		return "HTTP"
	}
	return p
}

func leftNote(left int) string {
	if left == 0 {
		return ""
	}
	return fmt.Sprintf("; %s could not be deleted in time and are listed too", benchkit.Num(int64(left)))
}

func (r *Report) scaleTable() string {
	s := r.Scale
	var b strings.Builder
	fmt.Fprintf(&b, "## 4. Scale: %s pods\n\n", benchkit.Num(int64(s.Requested)))
	fmt.Fprintf(&b, "%s pods of %s in namespace `%s`, labelled `group=<i mod 1000>`, created at c=%d; then lists from the "+
		"watch cache (consistent, no limit) through the gRPC client, and the apiserver's memory (VmRSS right after loading). "+
		"The lists time a cache that holds every pod: they start once the apiserver's watch cache is at etcd's revision "+
		"(%s after the load here; a consistent list made before waits for it) and the apiserver and the benchmark process "+
		"(which holds etcd) together use under a tenth of a core over half a second (%s after the load), each right after a "+
		"collection of the benchmark process's heap, so that no list pays for collecting the one before it.\n\n",
		benchkit.Num(int64(s.Requested)), benchkit.FormatBytes(int64(s.PodBytes)), scaleNS, r.Config.ScaleConcurrency,
		benchkit.FormatDuration(s.CacheLag), benchkit.FormatDuration(s.Settle))
	b.WriteString("| figure | value | target | result |\n| --- | ---: | ---: | --- |\n")
	row := func(fig, val, target, result string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", fig, val, target, result)
	}
	row("pods created", fmt.Sprintf("%s in %s (%s, p99 %s, apiserver CPU/create %s)", countCell(s.Load), benchkit.FormatDuration(s.Load.Elapsed), rate(s.Load.Rate()), benchkit.FormatDuration(s.Load.P99), benchkit.FormatDuration(s.Load.CPUPerOp)), "—", "—")
	row(fmt.Sprintf("full list, %s items, decoded (min / median / max of %d)", benchkit.Num(int64(s.ListItems)), len(s.FullList)),
		fmt.Sprintf("%s / %s / %s", benchkit.FormatDuration(benchkit.MinDuration(s.FullList)), benchkit.FormatDuration(benchkit.Median(s.FullList)), benchkit.FormatDuration(slices.Max(append([]time.Duration{0}, s.FullList...)))), "≤ "+benchkit.FormatTarget(targetFullList), verdict(len(s.FullList) > 0 && benchkit.Median(s.FullList) <= targetFullList))
	row(fmt.Sprintf("full list, raw gRPC without decoding, %s (min / median of %d)", benchkit.FormatBytes(int64(s.RawBytes)), len(s.RawList)),
		fmt.Sprintf("%s / %s", benchkit.FormatDuration(benchkit.MinDuration(s.RawList)), benchkit.FormatDuration(benchkit.Median(s.RawList))), "—", "—")
	if len(s.EtcdList) > 0 {
		row(fmt.Sprintf("baseline: raw etcd range read of the same %s keys (min / median of %d)", benchkit.Num(int64(s.EtcdKeys)), len(s.EtcdList)),
			fmt.Sprintf("%s / %s", benchkit.FormatDuration(benchkit.MinDuration(s.EtcdList)), benchkit.FormatDuration(benchkit.Median(s.EtcdList))), "—", "—")
	}
	row(fmt.Sprintf("list `group=7`, %d items (median of %d)", s.LabelItems, len(s.LabelList)), benchkit.FormatDuration(benchkit.Median(s.LabelList)), "≤ "+benchkit.FormatTarget(targetLabelList), verdict(len(s.LabelList) > 0 && benchkit.Median(s.LabelList) <= targetLabelList))
	row("apiserver RSS after loading", benchkit.FormatBytes(s.RSS), "≤ 2 GiB", verdict(s.RSS > 0 && s.RSS <= targetRSS))
	row("apiserver peak RSS (VmHWM, after the lists)", benchkit.FormatBytes(s.PeakRSS), "—", "—")
	b.WriteString("\n")
	return b.String()
}

func (r *Report) notes() []string {
	m := r.Machine
	notes := []string{
		fmt.Sprintf("Everything runs on one machine with %d cores: the load generator and etcd (embedded, in the benchmark's own process) "+
			"and kube-apiserver (a subprocess started with `--etcd-servers` pointing at that etcd, `--log-level warn`, "+
			"`--etcd-compaction-interval 0`). They compete for the same cores, and the machine may be shared with other work, so "+
			"figures are noisy; compare runs on the same machine only.", m.Cores),
		fmt.Sprintf("etcd keeps its data on %s with fsync on (etcd's default), so a put costs a WAL sync.", m.TempFS),
		"Creates are closed-loop: each worker sends its next create when the previous one returned; latency is per request as the client saw it. " +
			"The apiserver's CPU per create is its utime+stime from `/proc/<pid>/stat` over the phase divided by the creates.",
		"The raw etcd baseline skips all the apiserver work (authentication, decoding, defaulting, validation, encoding, the watch cache) " +
			"and is the ceiling for the apiserver's create rate on this machine.",
		r.restNote(),
		r.fanoutNote(),
		"The phases run in the order of the tables against the same etcd and apiserver; the 100,000-pod phase runs last so that its data cannot skew the others.",
		"RSS is VmRSS from `/proc/<pid>/status` of the apiserver process.",
	}
	out := notes[:0]
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (r *Report) restNote() string {
	if r.Rest == nil {
		return ""
	}
	gz := "the apiserver answered uncompressed, and the sizes are the bodies' on the wire"
	if r.Rest.Gzipped {
		gz = "the apiserver answered gzip-compressed, and the sizes are after the client decompressed"
	}
	return "The REST phase deletes the pods the creates phase left (and its own REST creates) so that `kubectl get pods -A` sees exactly " +
		"its own pods; the phases after it start with only those pods in the cluster. The REST creates splice each name into a JSON body " +
		"marshalled once, so the client's cost per request is small next to the gRPC client's protobuf encoding. Since every REST create " +
		"carries the same pod but for its name, the apiserver's memo of a create's managedFields (internal/fieldmanager/creates.go) " +
		"answers all but the first; a create of content the apiserver has not seen pays about 190 µs more for them. The lists' client asks for gzip " +
		"as kubectl's does; " + gz + "."
}

func (r *Report) fanoutNote() string {
	switch {
	case r.Fanout == nil:
		return ""
	case r.Fanout.RawWatch:
		return "In the fan-out phase the watchers read raw gRPC events (asking for batches, as the typed client does) and only each pod's name: " +
			"the phase measures the apiserver's delivery, and decoding every event would be a million pod decodes a second at the full rate, " +
			"more than the load generator's share of this machine (`-watch-raw=false` decodes them). The delays still include the watchers' " +
			"receiving (TLS, HTTP/2, gRPC) and scheduling on the same cores as the apiserver."
	default:
		return "In the fan-out phase every watcher decodes every event in the benchmark process (watchers × writes decodes), on the same cores as the apiserver, " +
			"so the delays include the client's own decoding and scheduling (the default, `-watch-raw`, reads only the names)."
	}
}

// ms formats a duration for progress lines.
func ms(d time.Duration) string { return benchkit.FormatDuration(d) }

func timeDiv(n int) time.Duration { return time.Duration(n) }

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

func rate(f float64) string { return benchkit.Num(int64(f+0.5)) + "/s" }

// num formats n with thousands separators.

func watchMode(raw bool) string {
	if raw {
		return "raw gRPC watch streams, batches allowed, and read only each pod's name (`-watch-raw`, the default)"
	}
	return "the typed gRPC client (`client.For[*corev1.Pod](c).Watch`), which decodes every event (`-watch-raw=false`)"
}

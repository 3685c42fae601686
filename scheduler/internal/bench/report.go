package bench

import (
	"fmt"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Report is one run.
type Report struct {
	Date         time.Time
	Quick        bool
	Machine      benchkit.Machine
	APIServerBin string
	SchedulerBin string
	Rows         []Row
	Problems     []string
}

// Row is one scenario's baseline and scheduler results.
type Row struct {
	Scenario  Scenario
	Baseline  *Result
	Scheduler *Result
}

func (r *Report) add(sc Scenario, m mode, res Result) {
	var row *Row
	for i := range r.Rows {
		if r.Rows[i].Scenario.Name == sc.Name {
			row = &r.Rows[i]
		}
	}
	if row == nil {
		r.Rows = append(r.Rows, Row{Scenario: sc})
		row = &r.Rows[len(r.Rows)-1]
	}
	if m == modeBaseline {
		row.Baseline = &res
	} else {
		row.Scheduler = &res
	}
}

func rate(r *Result) string {
	if r == nil {
		return "—"
	}
	return fmt.Sprintf("%s/s", benchkit.Num(int64(r.Rate()+0.5)))
}

func perPod(d time.Duration, r *Result) string {
	if r == nil || r.Bound == 0 {
		return "—"
	}
	return benchkit.FormatDuration(d / time.Duration(r.Bound))
}

// Markdown renders the report as the kube-scheduler section.
func (r *Report) Markdown() string {
	var b strings.Builder
	b.WriteString("# kube-scheduler benchmark\n\n")
	b.WriteString("Reproduce with `make bench` (runs `go run ./scheduler/cmd/scheduler-bench -out docs/benchmarks.md`\n" +
		"after the apiserver benchmark; about three minutes). A smoke run at a tenth of the size:\n" +
		"`go run ./scheduler/cmd/scheduler-bench -quick -out /tmp/bench.md`.\n\n")
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Date: %s\n", r.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- kube-apiserver: %s (embedded etcd, a fresh one per run); kube-scheduler: %s\n", r.APIServerBin, r.SchedulerBin)
	if r.Quick {
		b.WriteString("- **Quick run**: every scenario at a tenth of its size; the targets are for the full sizes.\n")
	}
	b.WriteString("\nEach scenario runs twice on a fresh apiserver with Node objects (4 CPU, 16 GiB, 110 pods, ten zones; no kubelet):\n" +
		"the **baseline**, where the benchmark itself binds each pod right after creating it (round-robin, no scheduler),\n" +
		"which is the most this machine's apiserver and etcd allow for a create plus a binding per pod; then with\n" +
		"**kube-scheduler** as its own process. Pods (100m CPU, 128 MiB requests) are created by 64 concurrent\n" +
		"gRPC creates over 4 connections. pods/s runs from the first create to the last binding seen on a watch;\n" +
		"latency is each pod's create to its binding. Everything (apiserver, etcd, scheduler, load generator) shares\n" +
		"this machine's cores.\n\n")
	b.WriteString("| scenario | baseline | kube-scheduler | target | result | p50 | p99 | scheduler CPU per pod | scheduler peak RSS | apiserver CPU per pod |\n")
	b.WriteString("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		s := row.Scheduler
		verdict, p50, p99, rss, apiCPU, schedCPU := "—", "—", "—", "—", "—", "—"
		if s != nil {
			verdict = "FAIL"
			if s.Bound == row.Scenario.Pods && s.Rate() >= row.Scenario.Target {
				verdict = "PASS"
			}
			if r.Quick {
				verdict += " (quick)"
			}
			p50, p99 = benchkit.FormatDuration(s.P50), benchkit.FormatDuration(s.P99)
			rss = benchkit.FormatBytes(s.SchedulerRSS)
			apiCPU, schedCPU = perPod(s.APIServerCPU, s), perPod(s.SchedulerCPU, s)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | ≥ %s/s | %s | %s | %s | %s | %s | %s |\n",
			row.Scenario.Title, rate(row.Baseline), rate(row.Scheduler), benchkit.Num(int64(row.Scenario.Target)),
			verdict, p50, p99, schedCPU, rss, apiCPU)
	}
	b.WriteString("\n| scenario | run | pods bound | span | p50 | p99 | scheduler CPU | apiserver CPU |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, row := range r.Rows {
		for _, x := range []struct {
			name string
			res  *Result
		}{{"baseline", row.Baseline}, {"kube-scheduler", row.Scheduler}} {
			if x.res == nil {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s / %s | %s | %s | %s | %s | %s |\n", row.Scenario.Name, x.name,
				benchkit.Num(int64(x.res.Bound)), benchkit.Num(int64(row.Scenario.Pods)), benchkit.FormatDuration(x.res.Elapsed),
				benchkit.FormatDuration(x.res.P50), benchkit.FormatDuration(x.res.P99),
				benchkit.FormatDuration(x.res.SchedulerCPU), benchkit.FormatDuration(x.res.APIServerCPU))
		}
	}
	if len(r.Problems) > 0 {
		b.WriteString("\nProblems:\n\n")
		for _, p := range r.Problems {
			fmt.Fprintf(&b, "- %s\n", p)
		}
	}
	return b.String()
}

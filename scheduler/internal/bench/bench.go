// Package bench measures kube-scheduler's throughput through the real
// kube-apiserver (with its embedded etcd) as issue 4 asks: Node objects
// with capacity and no kubelet, pods created as fast as the apiserver takes
// them, pods/s from the first create to the last binding seen, and each
// pod's create-to-bound latency. The baseline, in the same run, is the
// same load with the benchmark binding each pod itself right after its
// create (no scheduler): the rate this machine's apiserver and etcd allow.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Config scales the run.
type Config struct {
	APIServerBin string
	SchedulerBin string
	Out          string
	Quick        bool
	// Scenarios to run, by name (see scenarios); empty runs all.
	Scenarios   string
	Concurrency int
	// Timeout bounds one scenario's wait for its bindings.
	Timeout time.Duration
	// SchedulerProfile, when set, is where a 10 s CPU profile of the
	// scheduler, taken while pods are created, is written (per scenario:
	// the scenario's name is inserted before the extension).
	SchedulerProfile string
	// APIServerProfile is the same for the apiserver, in both modes.
	APIServerProfile string
	Stdout           io.Writer
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() *Config {
	return &Config{Out: "docs/benchmarks.md", Concurrency: 64, Timeout: 3 * time.Minute, Stdout: os.Stdout}
}

// AddFlags binds the flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.APIServerBin, "apiserver-bin", c.APIServerBin, "kube-apiserver binary (default _output/bin/kube-apiserver when it exists, else built into a temp dir).")
	fs.StringVar(&c.SchedulerBin, "scheduler-bin", c.SchedulerBin, "kube-scheduler binary (default _output/bin/kube-scheduler when it exists, else built).")
	fs.StringVar(&c.Out, "out", c.Out, "Markdown report whose kube-scheduler section is written (other sections are kept); empty writes none.")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "A smoke run: every scenario at a tenth of its size.")
	fs.StringVar(&c.Scenarios, "scenarios", c.Scenarios, "Comma-separated scenarios to run (basic, affinity, small); empty runs all.")
	fs.IntVar(&c.Concurrency, "concurrency", c.Concurrency, "Concurrent pod creates.")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "How long one scenario may wait for its pods to be bound.")
	fs.StringVar(&c.APIServerProfile, "apiserver-cpuprofile", c.APIServerProfile, "Write a 10 s CPU profile of kube-apiserver taken during each run's creates to this file, the scenario's name and run inserted before the extension.")
	fs.StringVar(&c.SchedulerProfile, "scheduler-cpuprofile", c.SchedulerProfile, "Write a 10 s CPU profile of kube-scheduler (run with --profiling) taken during each scenario's creates to this file, the scenario's name inserted before the extension.")
}

// Scenario is one shape of cluster and load.
type Scenario struct {
	Name  string
	Title string
	Nodes int
	Pods  int
	// Affinity puts required pod anti-affinity (per hostname) and a zone
	// topology spread constraint (DoNotSchedule) on every other pod.
	Affinity bool
	// Target is the pods/s the issue asks for.
	Target float64
}

var scenarios = []Scenario{
	{Name: "basic", Title: "5,000 nodes, 10,000 pods with requests", Nodes: 5000, Pods: 10000, Target: 1000},
	{Name: "affinity", Title: "5,000 nodes, 10,000 pods, half with required anti-affinity and topology spread", Nodes: 5000, Pods: 10000, Affinity: true, Target: 300},
	{Name: "small", Title: "500 nodes, 5,000 pods", Nodes: 500, Pods: 5000, Target: 1500},
}

// Run runs the selected scenarios and writes the report.
func Run(ctx context.Context, cfg *Config) error {
	logf := func(format string, args ...any) {
		_, _ = fmt.Fprintf(cfg.Stdout, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	tmp, err := os.MkdirTemp("", "scheduler-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()

	rep := &Report{Date: time.Now().UTC(), Quick: cfg.Quick, Machine: benchkit.DetectMachine(tmp)}
	bins := binaries{apiserver: cfg.APIServerBin, scheduler: cfg.SchedulerBin}
	if bins.apiserver == "" {
		if bins.apiserver, rep.APIServerBin, err = benchkit.Binary(ctx, "_output/bin/kube-apiserver", "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.APIServerBin = "`" + bins.apiserver + "`"
	}
	if bins.scheduler == "" {
		if bins.scheduler, rep.SchedulerBin, err = benchkit.Binary(ctx, "_output/bin/kube-scheduler", "github.com/coxswain/coxswain/scheduler/cmd/kube-scheduler", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.SchedulerBin = "`" + bins.scheduler + "`"
	}

	want := map[string]bool{}
	for n := range strings.SplitSeq(cfg.Scenarios, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	for _, sc := range scenarios {
		if len(want) > 0 && !want[sc.Name] {
			continue
		}
		if cfg.Quick {
			sc.Nodes, sc.Pods = sc.Nodes/10, sc.Pods/10
		}
		for _, mode := range []mode{modeBaseline, modeScheduler} {
			if ctx.Err() != nil {
				break
			}
			logf("scenario %s (%d nodes, %d pods), %s", sc.Name, sc.Nodes, sc.Pods, mode)
			res, rerr := runScenario(ctx, cfg, bins, tmp, sc, mode, logf)
			if rerr != nil {
				rep.Problems = append(rep.Problems, fmt.Sprintf("%s, %s: %v", sc.Name, mode, rerr))
				logf("  failed: %v", rerr)
				continue
			}
			logf("  %d/%d bound in %s: %.0f pods/s, p50 %s, p99 %s", res.Bound, sc.Pods, benchkit.FormatDuration(res.Elapsed),
				res.Rate(), benchkit.FormatDuration(res.P50), benchkit.FormatDuration(res.P99))
			rep.add(sc, mode, res)
		}
	}

	_, _ = io.WriteString(cfg.Stdout, "\n"+rep.Markdown())
	if ctx.Err() != nil {
		logf("interrupted: %s not written", cfg.Out)
		return ctx.Err()
	}
	if cfg.Out != "" {
		if err := benchkit.WriteSection(cfg.Out, "kube-scheduler", rep.Markdown()); err != nil {
			return err
		}
		logf("kube-scheduler section written to %s", cfg.Out)
	}
	if len(rep.Problems) > 0 {
		return errors.New(strings.Join(rep.Problems, "; "))
	}
	return nil
}

type binaries struct{ apiserver, scheduler string }

type mode int

const (
	modeBaseline mode = iota
	modeScheduler
)

func (m mode) short() string {
	if m == modeBaseline {
		return "baseline"
	}
	return "scheduler"
}

func (m mode) String() string {
	if m == modeBaseline {
		return "baseline (the benchmark binds)"
	}
	return "kube-scheduler"
}

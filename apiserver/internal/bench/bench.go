// Package bench is kube-apiserver's benchmark: pod creates against raw etcd
// puts, REST creates and `kubectl get pods -A` lists, watch fan-out
// latency, and lists and memory with 100,000 pods. It
// starts an embedded etcd, runs the apiserver binary as a subprocess on it,
// drives both from this process, and writes a Markdown report.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Config sets what the benchmark measures and how much.
type Config struct {
	Out          string
	APIServerBin string
	Quick        bool
	Phases       []string

	Concurrency   []int
	CreatesSerial int // creates (and puts) at concurrency 1
	Creates       int // creates (and puts) at each higher concurrency
	CreateMaxTime time.Duration

	Watchers      int
	WatchClients  int
	Writers       int
	WatchRate     int
	WatchDuration time.Duration
	WatchDrain    time.Duration
	WatchRaw      bool
	WatchMaxTime  time.Duration

	ScalePods        int
	ScaleConcurrency int
	ScaleMaxTime     time.Duration
	FullListRuns     int
	LabelListRuns    int

	RestPods     int           // pods in the cluster for the REST lists
	RestListRuns int           // runs of each REST list
	RestMaxTime  time.Duration // bound of the REST phase's clearing and loading
	Kubectl      string        // kubectl binary timed once; empty skips it
	// RestProfile, when set, is the path prefix of the apiserver's CPU
	// profile (PREFIX.cpu.pprof) and allocation profile (PREFIX.allocs.pprof)
	// taken during the REST creates.
	RestProfile string

	Stdout io.Writer // the tables
	Log    io.Writer // progress
}

// DefaultConfig is the full benchmark.
func DefaultConfig() *Config {
	return &Config{
		Out:    "docs/benchmarks.md",
		Phases: []string{"creates", "rest", "fanout", "scale"},

		Concurrency: []int{1, 16, 64}, CreatesSerial: 2000, Creates: 20000, CreateMaxTime: 15 * time.Second,

		Watchers: 1000, WatchRaw: true, WatchClients: 10, Writers: 32, WatchRate: 1000, WatchDuration: 10 * time.Second, WatchDrain: 30 * time.Second, WatchMaxTime: 20 * time.Second,

		ScalePods: 100000, ScaleConcurrency: 64, ScaleMaxTime: 4 * time.Minute, FullListRuns: 5, LabelListRuns: 20,

		RestPods: 10000, RestListRuns: 10, RestMaxTime: 2 * time.Minute, Kubectl: "/usr/bin/kubectl",

		Stdout: os.Stdout, Log: os.Stderr,
	}
}

// AddFlags binds the configuration to flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Out, "out", c.Out, "Markdown report whose kube-apiserver section is written (other sections are kept); empty writes none.")
	fs.StringVar(&c.APIServerBin, "apiserver-bin", c.APIServerBin, "kube-apiserver binary (default "+defaultBin+" when it exists, else built into a temp dir).")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "Smoke run of a few seconds per phase: small counts unless set by other flags.")
	fs.Func("phases", "Comma-separated phases to run: creates,rest,fanout,scale (default all).", func(s string) error {
		c.Phases = strings.Split(s, ",")
		for _, p := range c.Phases {
			if p != "creates" && p != "rest" && p != "fanout" && p != "scale" {
				return fmt.Errorf("unknown phase %q", p)
			}
		}
		return nil
	})
	fs.Func("concurrency", "Comma-separated create concurrency levels (default 1,16,64).", func(s string) error {
		c.Concurrency = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 {
				return fmt.Errorf("bad concurrency %q", f)
			}
			c.Concurrency = append(c.Concurrency, n)
		}
		return nil
	})
	fs.IntVar(&c.CreatesSerial, "creates-serial", c.CreatesSerial, "Creates and puts at concurrency 1.")
	fs.IntVar(&c.Creates, "creates", c.Creates, "Creates and puts at each higher concurrency.")
	fs.DurationVar(&c.CreateMaxTime, "create-max-time", c.CreateMaxTime, "Time bound of each create or put level.")
	fs.IntVar(&c.Watchers, "watchers", c.Watchers, "Concurrent pod watches in the fan-out phase.")
	fs.IntVar(&c.WatchClients, "watch-clients", c.WatchClients, "gRPC connections the watches are spread over.")
	fs.IntVar(&c.Writers, "writers", c.Writers, "Writer goroutines in the fan-out phase.")
	fs.IntVar(&c.WatchRate, "watch-rate", c.WatchRate, "Pod creates per second in the fan-out phase.")
	fs.DurationVar(&c.WatchDuration, "watch-duration", c.WatchDuration, "How long the fan-out phase writes.")
	fs.DurationVar(&c.WatchDrain, "watch-drain", c.WatchDrain, "How long after the last write the watchers may take to catch up.")
	fs.DurationVar(&c.WatchMaxTime, "watch-max-time", c.WatchMaxTime, "Time bound of the fan-out writes: creates not sent by then are dropped.")
	fs.BoolVar(&c.WatchRaw, "watch-raw", c.WatchRaw, "Fan-out watchers read raw gRPC events (batches allowed) and only the pod's name; -watch-raw=false decodes every event with the typed client instead, a million pod decodes a second at the full rate, on the same cores as the apiserver.")
	fs.IntVar(&c.ScalePods, "scale-pods", c.ScalePods, "Pods loaded in the scale phase.")
	fs.IntVar(&c.ScaleConcurrency, "scale-concurrency", c.ScaleConcurrency, "Concurrency of the scale phase's creates.")
	fs.DurationVar(&c.ScaleMaxTime, "scale-max-time", c.ScaleMaxTime, "Time bound of the scale phase's creates.")
	fs.IntVar(&c.FullListRuns, "full-list-runs", c.FullListRuns, "Full lists timed in the scale phase.")
	fs.IntVar(&c.LabelListRuns, "label-list-runs", c.LabelListRuns, "Label-selected lists timed in the scale phase.")
	fs.IntVar(&c.RestPods, "rest-pods", c.RestPods, "Pods in the cluster for the REST phase's kubectl get pods -A lists (earlier phases' pods are deleted first).")
	fs.IntVar(&c.RestListRuns, "rest-list-runs", c.RestListRuns, "Runs of each list in the REST phase.")
	fs.DurationVar(&c.RestMaxTime, "rest-max-time", c.RestMaxTime, "Time bound of the REST phase's deletes of earlier pods and of its loading.")
	fs.StringVar(&c.RestProfile, "rest-profile", c.RestProfile, "Path prefix of CPU (PREFIX.cpu.pprof) and allocation (PREFIX.allocs.pprof) profiles of the apiserver taken during the REST creates; empty takes none.")
	fs.StringVar(&c.Kubectl, "kubectl", c.Kubectl, "kubectl binary the REST phase times once with get pods -A when it exists; empty skips it.")
}

// ApplyQuick scales the run down to a smoke test, except for the flags
// named in set (those the user gave explicitly).
func (c *Config) ApplyQuick(set map[string]bool) {
	if !c.Quick {
		return
	}
	def := func(name string, apply func()) {
		if !set[name] {
			apply()
		}
	}
	def("creates-serial", func() { c.CreatesSerial = 200 })
	def("creates", func() { c.Creates = 1000 })
	def("create-max-time", func() { c.CreateMaxTime = 3 * time.Second })
	def("watchers", func() { c.Watchers = 50 })
	def("watch-clients", func() { c.WatchClients = 5 })
	def("watch-rate", func() { c.WatchRate = 200 })
	def("watch-duration", func() { c.WatchDuration = 2 * time.Second })
	def("watch-drain", func() { c.WatchDrain = 10 * time.Second })
	def("watch-max-time", func() { c.WatchMaxTime = 5 * time.Second })
	def("scale-pods", func() { c.ScalePods = 2000 })
	def("scale-max-time", func() { c.ScaleMaxTime = 30 * time.Second })
	def("label-list-runs", func() { c.LabelListRuns = 5 })
	def("rest-pods", func() { c.RestPods = 1000 })
	def("rest-list-runs", func() { c.RestListRuns = 3 })
	def("rest-max-time", func() { c.RestMaxTime = 30 * time.Second })
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Concurrency) == 0 {
		errs = append(errs, errors.New("no concurrency levels"))
	}
	for name, v := range map[string]int{
		"creates-serial": c.CreatesSerial, "creates": c.Creates, "watchers": c.Watchers, "watch-clients": c.WatchClients,
		"writers": c.Writers, "watch-rate": c.WatchRate, "scale-pods": c.ScalePods, "scale-concurrency": c.ScaleConcurrency,
		"full-list-runs": c.FullListRuns, "label-list-runs": c.LabelListRuns, "rest-pods": c.RestPods, "rest-list-runs": c.RestListRuns,
	} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("-%s must be at least 1", name))
		}
	}
	if c.WatchDuration < 100*time.Millisecond {
		errs = append(errs, errors.New("-watch-duration must be at least 100ms"))
	}
	return errors.Join(errs...)
}

func (c *Config) runs(phase string) bool {
	for _, p := range c.Phases {
		if p == phase {
			return true
		}
	}
	return false
}

// Run runs the benchmark, prints the tables and writes the report. The
// report is written with what was measured even when a phase fails.
func Run(ctx context.Context, cfg *Config) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logf := func(format string, args ...any) {
		_, _ = fmt.Fprintf(cfg.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
	rep := &Report{Date: time.Now().UTC(), Quick: cfg.Quick, Config: *cfg, Machine: benchkit.DetectMachine(os.TempDir())}
	logf("machine: %s", rep.Machine)

	e, err := startEnv(ctx, cfg, logf)
	if err != nil {
		return err
	}
	defer e.Close()
	rep.APIServerBin = e.Binary

	phases := []struct {
		name string
		run  func(context.Context, *env, *Config, *Report, func(string, ...any)) error
	}{
		{"creates", benchCreates},
		{"rest", benchRest},
		{"fanout", benchFanout},
		{"scale", benchScale}, // last: 100k pods would skew everything after it
	}
	for _, p := range phases {
		if !cfg.runs(p.name) {
			continue
		}
		logf("phase %s", p.name)
		if perr := p.run(ctx, e, cfg, rep, logf); perr != nil {
			err = fmt.Errorf("phase %s: %w", p.name, perr)
			rep.Problems = append(rep.Problems, err.Error())
			break
		}
	}

	_, _ = io.WriteString(cfg.Stdout, "\n"+rep.Tables())
	if ctx.Err() != nil {
		logf("interrupted: %s not written", cfg.Out)
		return errors.Join(err, ctx.Err())
	}
	if cfg.Out != "" {
		if werr := benchkit.WriteSection(cfg.Out, "kube-apiserver", rep.Markdown()); werr != nil {
			return errors.Join(err, werr)
		}
		logf("kube-apiserver section written to %s", cfg.Out)
	}
	return err
}

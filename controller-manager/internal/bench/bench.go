// Package bench measures kube-controller-manager as issue 5 asks, through
// the real kube-apiserver (embedded etcd) with the real controller-manager
// binary and no kubelets: the benchmark plays the kubelets' part by marking
// pods running and ready.
//
//   - scale: a Deployment scaled 0 → 3,000 replicas, time until every pod
//     exists (target ≤ 10 s);
//   - rollout: a rolling update of a 1,000-replica Deployment (maxSurge and
//     maxUnavailable 25%), time until complete (≤ 30 s) and the fewest
//     available pods seen (never below 750);
//   - slices: 10,000 ready pods behind 1,000 Services, every pod turned
//     not ready; time until the EndpointSlices show it (≤ 5 s after the
//     change).
//
// Each phase runs on a fresh apiserver; the baseline for each is the same
// writes done by the benchmark itself without a controller, where that is
// meaningful (creates for scale).
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Config scales the run.
type Config struct {
	APIServerBin         string
	ControllerManagerBin string
	Out                  string
	Quick                bool
	Phases               string
	ScaleReplicas        int
	RolloutReplicas      int
	Services             int
	PodsPerService       int
	Timeout              time.Duration
	// Profile, when set, is where a CPU profile of the controller-manager
	// over each phase's measured span (at most 30 s) is written, the
	// phase's name inserted before the extension.
	Profile string
	Stdout  io.Writer
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() *Config {
	return &Config{Out: "docs/benchmarks.md", ScaleReplicas: 3000, RolloutReplicas: 1000, Services: 1000, PodsPerService: 10,
		Timeout: 3 * time.Minute, Stdout: os.Stdout}
}

// AddFlags binds the flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.APIServerBin, "apiserver-bin", c.APIServerBin, "kube-apiserver binary (default _output/bin/kube-apiserver when it exists, else built).")
	fs.StringVar(&c.ControllerManagerBin, "controller-manager-bin", c.ControllerManagerBin, "kube-controller-manager binary (default _output/bin/kube-controller-manager when it exists, else built).")
	fs.StringVar(&c.Out, "out", c.Out, "Markdown report whose kube-controller-manager section is written (other sections are kept); empty writes none.")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "A smoke run at a tenth of the sizes.")
	fs.StringVar(&c.Phases, "phases", c.Phases, "Comma-separated phases to run: scale, rollout, slices (default all).")
	fs.IntVar(&c.ScaleReplicas, "scale-replicas", c.ScaleReplicas, "Replicas of the scale phase's Deployment.")
	fs.IntVar(&c.RolloutReplicas, "rollout-replicas", c.RolloutReplicas, "Replicas of the rollout phase's Deployment.")
	fs.IntVar(&c.Services, "services", c.Services, "Services of the slices phase.")
	fs.IntVar(&c.PodsPerService, "pods-per-service", c.PodsPerService, "Pods behind each Service in the slices phase.")
	fs.DurationVar(&c.Timeout, "timeout", c.Timeout, "Bound of each phase's wait.")
	fs.StringVar(&c.Profile, "cpuprofile", c.Profile, "Write a CPU profile of kube-controller-manager (run with --profiling) over each phase's measured span to this file, the phase's name inserted before the extension.")
}

type env struct {
	cfg            *Config
	tmp            string
	apiserver, kcm string
	logf           func(string, ...any)
}

// Run runs the phases and writes the report.
func Run(ctx context.Context, cfg *Config) error {
	logf := func(format string, args ...any) {
		_, _ = fmt.Fprintf(cfg.Stdout, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
	if cfg.Quick {
		cfg.ScaleReplicas, cfg.RolloutReplicas, cfg.Services = cfg.ScaleReplicas/10, cfg.RolloutReplicas/10, cfg.Services/10
	}
	tmp, err := os.MkdirTemp("", "controller-manager-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	rep := &Report{Date: time.Now().UTC(), Quick: cfg.Quick, Machine: benchkit.DetectMachine(tmp), Config: *cfg}
	e := &env{cfg: cfg, tmp: tmp, logf: logf, apiserver: cfg.APIServerBin, kcm: cfg.ControllerManagerBin}
	if e.apiserver == "" {
		if e.apiserver, rep.APIServerBin, err = benchkit.Binary(ctx, "_output/bin/kube-apiserver", "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.APIServerBin = "`" + e.apiserver + "`"
	}
	if e.kcm == "" {
		if e.kcm, rep.ControllerManagerBin, err = benchkit.Binary(ctx, "_output/bin/kube-controller-manager", "github.com/coxswain/coxswain/controller-manager/cmd/kube-controller-manager", tmp, logf); err != nil {
			return err
		}
	} else {
		rep.ControllerManagerBin = "`" + e.kcm + "`"
	}

	want := map[string]bool{}
	for p := range strings.SplitSeq(cfg.Phases, ",") {
		if p = strings.TrimSpace(p); p != "" {
			want[p] = true
		}
	}
	run := func(name string, f func(context.Context) error) {
		if ctx.Err() != nil || (len(want) > 0 && !want[name]) {
			return
		}
		logf("phase %s", name)
		if err := f(ctx); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", name, err))
			logf("  failed: %v", err)
		}
	}
	run("scale", func(ctx context.Context) (err error) { rep.Scale, err = e.scale(ctx); return err })
	run("rollout", func(ctx context.Context) (err error) { rep.Rollout, err = e.rollout(ctx); return err })
	run("slices", func(ctx context.Context) (err error) { rep.Slices, err = e.slices(ctx); return err })

	_, _ = io.WriteString(cfg.Stdout, "\n"+rep.Markdown())
	if ctx.Err() != nil {
		logf("interrupted: %s not written", cfg.Out)
		return ctx.Err()
	}
	if cfg.Out != "" {
		if err := benchkit.WriteSection(cfg.Out, "kube-controller-manager", rep.Markdown()); err != nil {
			return err
		}
		logf("kube-controller-manager section written to %s", cfg.Out)
	}
	if len(rep.Problems) > 0 {
		return errors.New(strings.Join(rep.Problems, "; "))
	}
	return nil
}

// cluster is one phase's apiserver and, once started, controller-manager.
type cluster struct {
	api  *benchkit.APIServer
	kcm  *benchkit.Process
	dir  string
	name string
	// profilePort is the controller-manager's port when it serves pprof.
	profilePort int
	profileWG   sync.WaitGroup
}

func (e *env) startCluster(ctx context.Context, name string) (*cluster, error) {
	dir, err := os.MkdirTemp(e.tmp, name+"-")
	if err != nil {
		return nil, err
	}
	api, err := benchkit.StartAPIServer(ctx, e.apiserver, dir, 4)
	if err != nil {
		return nil, err
	}
	return &cluster{api: api, dir: dir, name: name}, nil
}

func (c *cluster) startControllerManager(e *env) error {
	// The slices phase binds its pods to Node names that do not exist (no
	// kubelets): the pod garbage collector would delete them mid-run.
	args := []string{"--kubeconfig", c.api.Kubeconfig, "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--leader-elect=false", "--log-level", "warn", "--controllers", "*,-podgc"}
	if e.cfg.Profile != "" {
		port, err := benchkit.FreePort()
		if err != nil {
			return err
		}
		c.profilePort = port
		args = append(args, "--profiling", "--secure-port", strconv.Itoa(port))
	}
	p, err := benchkit.StartProcess("kube-controller-manager", e.kcm, filepath.Join(c.dir, "kube-controller-manager.log"), args...)
	if err != nil {
		return err
	}
	c.kcm = p
	return nil
}

func (c *cluster) alive() error {
	if err := c.api.Alive(); err != nil {
		return err
	}
	if c.kcm != nil {
		return c.kcm.Alive()
	}
	return nil
}

func (c *cluster) cpu() (api, kcm time.Duration) {
	api, _ = benchkit.ProcessCPU(c.api.PID())
	if c.kcm != nil {
		kcm, _ = benchkit.ProcessCPU(c.kcm.PID())
	}
	return api, kcm
}

// profile starts a CPU profile of the controller-manager over the next
// seconds, when profiling is on; close waits for it.
func (c *cluster) profile(ctx context.Context, e *env, seconds int) {
	if c.profilePort == 0 {
		return
	}
	ext := filepath.Ext(e.cfg.Profile)
	path := strings.TrimSuffix(e.cfg.Profile, ext) + "-" + c.name + ext
	url := fmt.Sprintf("https://127.0.0.1:%d/debug/pprof/profile?seconds=%d", c.profilePort, seconds)
	c.profileWG.Go(func() {
		//nolint:gosec // the controller-manager's self-signed loopback certificate
		if err := benchkit.FetchProfile(ctx, url, &tls.Config{InsecureSkipVerify: true}, path); err != nil {
			e.logf("  controller-manager CPU profile: %v", err)
			return
		}
		e.logf("  controller-manager CPU profile written to %s", path)
	})
}

func (c *cluster) close(logf func(string, ...any)) {
	c.profileWG.Wait()
	if c.kcm != nil {
		c.kcm.Stop(10*time.Second, logf)
	}
	c.api.Close(logf)
	_ = os.RemoveAll(c.dir)
}

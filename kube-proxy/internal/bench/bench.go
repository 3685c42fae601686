// Package bench measures kube-proxy as issue 8 asks. Services and
// EndpointSlices are fed to the proxier directly (hand-filled informer
// caches, as its sync reads them), and its rules go into a private network
// namespace the benchmark makes and removes, once per iptables backend
// (nf_tables and legacy):
//
//   - a full sync, cold (an empty namespace, as at a node's first start)
//     and warm (over the proxy's own rules, as the periodic resync), each
//     against iptables-restore of the same rules text timed alone, in the
//     same state, in the same run;
//   - the sync after one endpoint change (a partial sync), against
//     iptables-restore of the same (partial) text alone;
//   - the proxy's own CPU while it idles between syncs.
//
// Then node-local DNS: queries/s and latency from a load generator on
// loopback, with 10,000 Services in the server's cache.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/pkg/benchkit"
)

// Config scales the run.
type Config struct {
	Out string
	// Scales are the Service counts.
	Scales []int
	// Endpoints per Service.
	Endpoints int
	// Changes is the number of one-endpoint changes timed per case.
	Changes int
	// Reps is how often each full sync and raw restore is timed.
	Reps int
	// Backends to run: "nft", "legacy".
	Backends []string
	// Limit bounds one restore or full sync; past it the measure is abandoned.
	Limit time.Duration
	// Slow: a case whose first raw restore takes longer has its full syncs
	// timed once rather than Reps times.
	Slow time.Duration
	// Idle is the window over which the idle proxy's CPU is measured.
	Idle time.Duration
	// DNS load: Services in the cache, concurrent clients, duration.
	DNSServices int
	DNSClients  int
	DNSDuration time.Duration
	Quick       bool
	Stdout      io.Writer
}

// DefaultConfig is what `make bench` runs.
func DefaultConfig() *Config {
	return &Config{
		Out: "docs/benchmarks.md", Scales: []int{1000, 10000}, Endpoints: 5, Changes: 20, Reps: 5,
		Backends: []string{"nft", "legacy"}, Limit: 15 * time.Minute, Slow: time.Minute, Idle: 20 * time.Second,
		DNSServices: 10000, DNSClients: 16, DNSDuration: 10 * time.Second, Stdout: os.Stdout,
	}
}

// AddFlags binds the flags.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Out, "out", c.Out, "Markdown report whose kube-proxy section is written (other sections are kept); empty writes none.")
	fs.Func("scales", "Comma-separated Service counts (default 1000,10000).", func(s string) error {
		c.Scales = nil
		for f := range strings.SplitSeq(s, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n <= 0 {
				return fmt.Errorf("bad scale %q", f)
			}
			c.Scales = append(c.Scales, n)
		}
		return nil
	})
	fs.Func("backends", "Comma-separated iptables backends: nft, legacy (default both).", func(s string) error {
		c.Backends = nil
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "nft" && f != "legacy" {
				return fmt.Errorf("unknown backend %q", f)
			}
			c.Backends = append(c.Backends, strings.TrimSpace(f))
		}
		return nil
	})
	fs.IntVar(&c.Endpoints, "endpoints", c.Endpoints, "Endpoints per Service.")
	fs.IntVar(&c.Changes, "changes", c.Changes, "One-endpoint changes timed per case.")
	fs.IntVar(&c.Reps, "reps", c.Reps, "Repetitions of each full sync and raw restore.")
	fs.DurationVar(&c.Limit, "limit", c.Limit, "Longest a single restore or full sync may take before it is abandoned.")
	fs.DurationVar(&c.Slow, "slow", c.Slow, "A case whose first raw restore takes longer times its full syncs once instead of -reps times (0: never).")
	fs.DurationVar(&c.Idle, "idle", c.Idle, "Window over which the idle proxy's CPU is measured.")
	fs.IntVar(&c.DNSServices, "dns-services", c.DNSServices, "Services in the DNS server's cache.")
	fs.IntVar(&c.DNSClients, "dns-clients", c.DNSClients, "Concurrent DNS clients (closed loop).")
	fs.DurationVar(&c.DNSDuration, "dns-duration", c.DNSDuration, "Duration of the DNS load.")
	fs.BoolVar(&c.Quick, "quick", c.Quick, "A smoke run: 200 and 1,000 Services, 5 changes, 1 repetition, short windows.")
}

func (c *Config) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(c.Stdout, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// Run runs the benchmark and writes the report.
func Run(ctx context.Context, cfg *Config) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root: makes a network namespace and programs iptables in it")
	}
	if cfg.Quick {
		cfg.Scales, cfg.Changes, cfg.Reps = []int{200, 1000}, 5, 1
		cfg.Idle, cfg.DNSDuration, cfg.DNSServices = 3*time.Second, 3*time.Second, 1000
	}
	tmp, err := os.MkdirTemp("", "proxy-bench-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	rep := &Report{Date: time.Now().UTC(), Quick: cfg.Quick, Machine: benchkit.DetectMachine(tmp), Config: *cfg, LoadStart: loadAverage()}
	for _, b := range cfg.Backends {
		out, err := exec.CommandContext(ctx, backendBinary(b, "iptables"), "--version").Output()
		if err != nil {
			return fmt.Errorf("%s: %w", backendBinary(b, "iptables"), err)
		}
		rep.Versions = append(rep.Versions, strings.TrimSpace(string(out)))
	}
	for _, n := range cfg.Scales {
		for _, b := range cfg.Backends {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			cfg.logf("%s, %s Services × %d endpoints", b, benchkit.Num(int64(n)), cfg.Endpoints)
			res, err := runCase(ctx, cfg, b, n)
			if err != nil {
				return fmt.Errorf("%s, %d services: %w", b, n, err)
			}
			rep.Cases = append(rep.Cases, res)
		}
	}
	cfg.logf("DNS: %s Services, %d clients for %v", benchkit.Num(int64(cfg.DNSServices)), cfg.DNSClients, cfg.DNSDuration)
	if rep.DNS, err = runDNS(ctx, cfg); err != nil {
		return fmt.Errorf("dns: %w", err)
	}
	rep.LoadEnd = loadAverage()
	md := rep.Markdown()
	_, _ = fmt.Fprintln(cfg.Stdout, md)
	if cfg.Out == "" {
		return nil
	}
	if err := benchkit.WriteSection(cfg.Out, "kube-proxy", md); err != nil {
		return err
	}
	cfg.logf("wrote the kube-proxy section of %s", cfg.Out)
	return nil
}

func backendBinary(backend, name string) string {
	if backend == "legacy" {
		return name + "-legacy"
	}
	return name + "-nft"
}

// namespace is a private network namespace of the benchmark.
type namespace struct {
	name string
}

var nsSeq int

func newNamespace(ctx context.Context) (*namespace, error) {
	nsSeq++
	ns := &namespace{name: fmt.Sprintf("cxs-bench-%d-%d", os.Getpid(), nsSeq)}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip netns add %s: %w: %s", ns.name, err, out)
	}
	return ns, nil
}

func (ns *namespace) path() string { return nsexec.Path(ns.name) }

// remove deletes the namespace (and with it every rule in it).
func (ns *namespace) remove() {
	_ = exec.Command("ip", "netns", "del", ns.name).Run()
}

// loadAverage is the first three fields of /proc/loadavg ("" if unreadable):
// the machine may be shared, and other work there moves every figure.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

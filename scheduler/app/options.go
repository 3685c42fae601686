// Package app holds kube-scheduler's options and wiring, so that the
// binary, tests and a future all-in-one binary start it the same way.
package app

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/secureserving"
	"github.com/coxswain/coxswain/scheduler/internal/config"
)

// Options are kube-scheduler's settings. A --config file is the base;
// flags given explicitly override it.
type Options struct {
	Kubeconfig    string
	ConfigFile    string
	SchedulerName string
	// Serving is the HTTPS port of /healthz, /readyz and /metrics.
	Serving  secureserving.Options
	LogLevel string
	// Profiling serves /debug/pprof on the secure port.
	Profiling bool

	LeaderElect                  bool
	LeaderElectLeaseDuration     time.Duration
	LeaderElectRenewDeadline     time.Duration
	LeaderElectRetryPeriod       time.Duration
	LeaderElectResourceName      string
	LeaderElectResourceNamespace string
	LeaderElectReleaseOnCancel   bool
	ShutdownGracePeriod          time.Duration
	// Config, when set (in-process tests), is used instead of ConfigFile.
	Config *config.Configuration

	// set holds the flags given on the command line.
	set map[string]bool
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		SchedulerName:                corev1.DefaultSchedulerName,
		Serving:                      secureserving.Options{BindAddress: "0.0.0.0", Port: 10259},
		LogLevel:                     "info",
		LeaderElectLeaseDuration:     15 * time.Second,
		LeaderElectRenewDeadline:     10 * time.Second,
		LeaderElectRetryPeriod:       2 * time.Second,
		LeaderElectResourceName:      config.DefaultLeaseName,
		LeaderElectResourceNamespace: config.DefaultLeaseNamespace,
		LeaderElectReleaseOnCancel:   true,
		ShutdownGracePeriod:          5 * time.Second,
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file of the apiserver (the apiserver writes <data-dir>/scheduler.kubeconfig). Falls back to clientConnection.kubeconfig of --config.")
	fs.StringVar(&o.ConfigFile, "config", o.ConfigFile, "KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1, YAML or JSON): one profile, its filter and score plugins, weights and plugin args. Flags given explicitly override it.")
	fs.StringVar(&o.SchedulerName, "scheduler-name", o.SchedulerName, "Pods whose spec.schedulerName is this are scheduled.")
	o.Serving.AddFlags(fs, "/healthz, /livez, /readyz and /metrics")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve Go's pprof profiles under /debug/pprof/ on the secure port. The port does not authenticate: enable only on a trusted --bind-address.")
	logging.AddFlags(fs, &o.LogLevel)
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader through a Lease before scheduling, so that several replicas can run and one schedules.")
	fs.DurationVar(&o.LeaderElectLeaseDuration, "leader-elect-lease-duration", o.LeaderElectLeaseDuration, "How long a standby waits, after the lease last changed, before taking it over. A crashed leader is replaced within this plus two retry periods.")
	fs.DurationVar(&o.LeaderElectRenewDeadline, "leader-elect-renew-deadline", o.LeaderElectRenewDeadline, "How long the leader retries renewing before it gives up leadership (and exits).")
	fs.DurationVar(&o.LeaderElectRetryPeriod, "leader-elect-retry-period", o.LeaderElectRetryPeriod, "Pause between attempts to acquire or renew the lease.")
	fs.StringVar(&o.LeaderElectResourceName, "leader-elect-resource-name", o.LeaderElectResourceName, "Name of the Lease.")
	fs.StringVar(&o.LeaderElectResourceNamespace, "leader-elect-resource-namespace", o.LeaderElectResourceNamespace, "Namespace of the Lease.")
}

// MarkSet records the flags given explicitly in fs (called by NewCommand).
func (o *Options) MarkSet(fs *pflag.FlagSet) {
	o.set = map[string]bool{}
	fs.Visit(func(f *pflag.Flag) { o.set[f.Name] = true })
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if err := o.Serving.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.SchedulerName == "" {
		errs = append(errs, errors.New("--scheduler-name must not be empty"))
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	if o.LeaderElectLeaseDuration <= o.LeaderElectRenewDeadline {
		errs = append(errs, fmt.Errorf("--leader-elect-lease-duration %v must be greater than --leader-elect-renew-deadline %v", o.LeaderElectLeaseDuration, o.LeaderElectRenewDeadline))
	}
	if o.LeaderElectRetryPeriod <= 0 {
		errs = append(errs, errors.New("--leader-elect-retry-period must be positive"))
	}
	if o.ShutdownGracePeriod < 0 {
		errs = append(errs, errors.New("shutdown grace period must not be negative"))
	}
	return errors.Join(errs...)
}

// override says whether the option named by flag replaces the config
// file's value: always without a file, else only when given explicitly.
func (o *Options) override(flag string) bool {
	return (o.ConfigFile == "" && o.Config == nil) || o.set[flag]
}

// Complete loads the configuration and applies the flags over it.
func (o *Options) Complete() (*config.Configuration, error) {
	var cfg *config.Configuration
	switch {
	case o.Config != nil:
		c := *o.Config
		c.Profiles = append([]config.Profile(nil), o.Config.Profiles...)
		c.SetDefaults()
		cfg = &c
	case o.ConfigFile != "":
		c, err := config.Load(o.ConfigFile)
		if err != nil {
			return nil, err
		}
		cfg = c
	default:
		cfg = config.Default()
	}
	if o.override("scheduler-name") {
		cfg.Profiles[0].SchedulerName = o.SchedulerName
	}
	le := &cfg.LeaderElection
	if o.override("leader-elect") {
		v := o.LeaderElect
		le.LeaderElect = &v
	}
	if o.override("leader-elect-lease-duration") {
		le.LeaseDuration.Duration = o.LeaderElectLeaseDuration
	}
	if o.override("leader-elect-renew-deadline") {
		le.RenewDeadline.Duration = o.LeaderElectRenewDeadline
	}
	if o.override("leader-elect-retry-period") {
		le.RetryPeriod.Duration = o.LeaderElectRetryPeriod
	}
	if o.override("leader-elect-resource-name") {
		le.ResourceName = o.LeaderElectResourceName
	}
	if o.override("leader-elect-resource-namespace") {
		le.ResourceNamespace = o.LeaderElectResourceNamespace
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	return cfg, nil
}

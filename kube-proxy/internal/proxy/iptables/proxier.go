package iptables

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/coxswain/coxswain/pkg/informer"
)

// Options configure a Proxier.
type Options struct {
	Config
	Runner *Runner
	// MinSyncPeriod is the least time between two syncs; changes arriving
	// sooner are batched into the next one.
	MinSyncPeriod time.Duration
	// SyncPeriod is the period of full resyncs even without changes.
	SyncPeriod time.Duration
	Logger     *zap.Logger
	Metrics    prometheus.Registerer
}

// Proxier keeps the iptables rules in line with the Services and
// EndpointSlices of its listers.
type Proxier struct {
	opts     Options
	services *informer.Lister[*corev1.Service]
	slices   *informer.Lister[*discoveryv1.EndpointSlice]
	logger   *zap.Logger
	trigger  chan struct{}
	metrics  *metrics

	mu           sync.Mutex // guards the fields below
	owned        map[string]bool
	jumpsEnsured bool
	pendingSince time.Time
	lastSync     time.Time
	lastRules    *Ruleset
}

type metrics struct {
	duration prometheus.Histogram
	last     prometheus.Gauge
	rules    *prometheus.GaugeVec
	failures prometheus.Counter
}

// New returns a Proxier over the listers.
func New(services *informer.Lister[*corev1.Service], slices *informer.Lister[*discoveryv1.EndpointSlice], opts Options) *Proxier {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.Runner == nil {
		opts.Runner = &Runner{}
	}
	if opts.SyncPeriod <= 0 {
		opts.SyncPeriod = 30 * time.Second
	}
	p := &Proxier{opts: opts, services: services, slices: slices, logger: opts.Logger, trigger: make(chan struct{}, 1)}
	p.metrics = &metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_duration_seconds",
			Help:    "SyncProxyRules latency in seconds",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced",
		}),
		rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_total",
			Help: "Total number of iptables rules owned by kube-proxy",
		}, []string{"table"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_restore_failures_total",
			Help: "Cumulative proxy iptables restore failures",
		}),
	}
	if opts.Metrics != nil {
		opts.Metrics.MustRegister(p.metrics.duration, p.metrics.last, p.metrics.rules, p.metrics.failures)
	}
	return p
}

// OnChange asks for a sync.
func (p *Proxier) OnChange() {
	p.mu.Lock()
	if p.pendingSince.IsZero() {
		p.pendingSince = time.Now()
	}
	p.mu.Unlock()
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Handler returns an informer handler that asks for a sync on every change.
func (p *Proxier) Handler() informer.ResourceEventHandler {
	return informer.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { p.OnChange() },
		UpdateFunc: func(any, any) { p.OnChange() },
		DeleteFunc: func(any) { p.OnChange() },
	}
}

// Healthy says whether the rules are recent: no change has waited longer
// than timeout for a successful sync. It also returns the last successful sync.
func (p *Proxier) Healthy(timeout time.Duration) (bool, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pendingSince.IsZero() || time.Since(p.pendingSince) < timeout, p.lastSync
}

// LastRuleset returns the ruleset of the last successful sync (nil before one).
func (p *Proxier) LastRuleset() *Ruleset {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastRules
}

// Sync writes the whole ruleset once.
func (p *Proxier) Sync(ctx context.Context) error {
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.opts.Runner
	if !p.jumpsEnsured {
		if err := EnsureJumps(ctx, r); err != nil {
			return err
		}
		p.jumpsEnsured = true
	}
	if p.owned == nil {
		save, err := r.Save(ctx, TableNAT)
		if err != nil {
			return fmt.Errorf("read nat chains: %w", err)
		}
		p.owned = map[string]bool{}
		for _, c := range chainsIn(save) {
			if isOwnedChain(c) {
				p.owned[c] = true
			}
		}
	}
	ports := ServicePorts(p.services.List(nil), p.slices.List(nil))
	rs := Build(p.opts.Config, ports, p.owned)
	data := append(bytes.Clone(rs.Filter), rs.NAT...)
	if err := r.Restore(ctx, data); err != nil {
		p.metrics.failures.Inc()
		p.owned = nil          // re-read what is there next time
		p.jumpsEnsured = false // and check the jumps again
		return fmt.Errorf("iptables-restore: %w", err)
	}
	p.owned = rs.Chains
	p.lastRules = rs
	p.lastSync = time.Now()
	if !p.pendingSince.IsZero() && !p.pendingSince.After(start) {
		p.pendingSince = time.Time{}
	}
	p.metrics.duration.Observe(time.Since(start).Seconds())
	p.metrics.last.Set(float64(p.lastSync.UnixNano()) / 1e9)
	for t, n := range rs.Rules {
		p.metrics.rules.WithLabelValues(t).Set(float64(n))
	}
	p.logger.Debug("synced proxy rules", zap.Int("servicePorts", len(ports)), zap.Duration("took", time.Since(start)))
	return nil
}

// Run syncs at start, on every change (at most once per MinSyncPeriod),
// every SyncPeriod, and retries failures with back-off, until ctx is done.
func (p *Proxier) Run(ctx context.Context) {
	p.OnChange()
	resync := time.NewTicker(p.opts.SyncPeriod)
	defer resync.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := time.Second
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.trigger:
		case <-resync.C:
			p.recheckJumps()
		case <-retry.C:
		}
		if wait := p.opts.MinSyncPeriod - time.Since(last); wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		select { // the changes are folded into this sync
		case <-p.trigger:
		default:
		}
		last = time.Now()
		if err := p.Sync(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			p.logger.Error("sync proxy rules failed", zap.Error(err), zap.Duration("retryIn", backoff))
			retry.Reset(backoff)
			backoff = min(backoff*2, p.opts.SyncPeriod)
			continue
		}
		backoff = time.Second
	}
}

// recheckJumps makes the next sync check the jump rules again (someone may
// have flushed the built-in chains).
func (p *Proxier) recheckJumps() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.jumpsEnsured = false
}

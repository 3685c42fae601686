package iptables

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/pkg/informer"
)

// largeClusterEndpoints is upstream's threshold: above it, rules in the
// per-service chains are written without comments.
const largeClusterEndpoints = 1000

// Options configure a Proxier.
type Options struct {
	Config
	Runner *Runner
	// MinSyncPeriod is the least time between two syncs; changes arriving
	// sooner are batched into the next one.
	MinSyncPeriod time.Duration
	// SyncPeriod is the period of full resyncs even without changes.
	SyncPeriod time.Duration
	// CheckPeriod is the period of the checks of the jump rules from the
	// built-in chains (default one minute, as upstream's iptables monitor).
	CheckPeriod time.Duration
	// NodePortsOnNodeIPs makes NodePorts answer on the IPv4 addresses
	// (InternalIP, ExternalIP) of the Node given to SetNode, when
	// Config.NodePortAddresses is empty; while the Node has none, every
	// local address does.
	NodePortsOnNodeIPs bool
	// LocalFromNodeCIDR makes the Node's IPv4 pod CIDR (spec.podCIDRs) the
	// range of local traffic when Config.ClusterCIDR is empty (upstream's
	// --detect-local-mode NodeCIDR).
	LocalFromNodeCIDR bool
	// Conntrack, when set, deletes the conntrack entries of UDP endpoints
	// that went away.
	Conntrack Conntrack
	Logger    *zap.Logger
	Metrics   prometheus.Registerer
}

// Conntrack deletes UDP conntrack entries.
type Conntrack interface {
	DeleteUDP(flows []UDPFlow) error
}

// UDPFlow selects UDP conntrack entries: those whose original destination
// is OrigDst ("" any) port OrigDstPort (0 any), and whose reply comes from
// ReplySrc ("" any), i.e. that were DNATed to the endpoint ReplySrc.
type UDPFlow struct {
	OrigDst     string
	OrigDstPort int32
	ReplySrc    string
}

// SyncResult describes the last successful sync.
type SyncResult struct {
	// Full says whether every chain was written.
	Full bool
	// Services is how many Services' rules were rebuilt.
	Services int
	// Took is the whole sync; Restore the iptables-restore call alone.
	Took, RestoreTook time.Duration
	// Restore is the iptables-restore input (nil when nothing changed).
	Restore []byte
	// Written counts the rules written per table.
	Written map[string]int
	// Rules counts the rules the proxy owns per table.
	Rules map[string]int
}

// Proxier keeps the iptables rules in line with the Services and
// EndpointSlices of its listers. A full sync writes every chain it owns; a
// partial sync, after changes, writes the chains of the Services that
// changed and the top-level chains whose rules changed.
type Proxier struct {
	opts     Options
	services *informer.Lister[*corev1.Service]
	slices   *informer.Lister[*discoveryv1.EndpointSlice]
	logger   *zap.Logger
	trigger  chan struct{}
	metrics  *metrics

	changeMu     sync.Mutex // guards the fields below
	dirty        map[string]bool
	needFull     bool
	pendingSince time.Time
	lastSync     time.Time
	nextCfg      Config // what the next sync writes by (SetNode changes it)

	mu sync.Mutex // serialises syncs; guards the fields below
	// cfg is the Config of the rules being (or last) written; cfgGen counts
	// its changes, and serviceRules built by another generation are stale.
	cfg    Config
	cfgGen int
	// svcs is what each Service (namespace/name) has in the kernel, as of
	// the last successful sync; keys are its sorted keys.
	svcs         map[string]*serviceRules
	keys         []string
	endpoints    int
	written      map[chainRef][]byte // the top-level chains as last written
	writtenN     map[chainRef]int    // and their rule counts
	readExisting bool                // the next full sync reads the nat table's chains
	jumpsOK      bool
	largeCluster bool
	lastFullSize int
	last         SyncResult
}

type metrics struct {
	duration, full, partial prometheus.Histogram
	last                    prometheus.Gauge
	rules, written          *prometheus.GaugeVec
	failures, partialFails  prometheus.Counter
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
	if opts.CheckPeriod <= 0 {
		opts.CheckPeriod = time.Minute
	}
	p := &Proxier{
		opts: opts, services: services, slices: slices, logger: opts.Logger, trigger: make(chan struct{}, 1),
		dirty: map[string]bool{}, needFull: true, readExisting: true, cfg: opts.Config, nextCfg: opts.Config,
	}
	buckets := prometheus.ExponentialBuckets(0.001, 2, 15)
	p.metrics = &metrics{
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds", Buckets: buckets,
		}),
		full: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_full_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds for full resyncs", Buckets: buckets,
		}),
		partial: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "kubeproxy", Name: "sync_partial_proxy_rules_duration_seconds",
			Help: "SyncProxyRules latency in seconds for partial resyncs", Buckets: buckets,
		}),
		last: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_last_timestamp_seconds",
			Help: "The last time proxy rules were successfully synced",
		}),
		rules: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_total",
			Help: "Total number of iptables rules owned by kube-proxy",
		}, []string{"table"}),
		written: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_last",
			Help: "Number of iptables rules written by kube-proxy in last sync",
		}, []string{"table"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_restore_failures_total",
			Help: "Cumulative proxy iptables restore failures",
		}),
		partialFails: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "kubeproxy", Name: "sync_proxy_rules_iptables_partial_restore_failures_total",
			Help: "Cumulative proxy iptables partial restore failures",
		}),
	}
	if opts.Metrics != nil {
		m := p.metrics
		opts.Metrics.MustRegister(m.duration, m.full, m.partial, m.last, m.rules, m.written, m.failures, m.partialFails)
	}
	return p
}

// serviceKey is the namespace/name of the Service obj (a Service or an
// EndpointSlice) belongs to, or "" if none.
func serviceKey(obj any) string {
	switch o := obj.(type) {
	case informer.DeletedFinalStateUnknown:
		return serviceKey(o.Obj)
	case *informer.DeletedFinalStateUnknown:
		return serviceKey(o.Obj)
	case *corev1.Service:
		return o.Namespace + "/" + o.Name
	case *discoveryv1.EndpointSlice:
		if svc := o.Labels[discoveryv1.LabelServiceName]; svc != "" {
			return o.Namespace + "/" + svc
		}
	}
	return ""
}

// OnChange records a change of the Service namespace/name (or, with an
// empty key, of something that needs a full sync) and asks for a sync.
func (p *Proxier) OnChange(key string) {
	p.changeMu.Lock()
	if key == "" {
		p.needFull = true
	} else {
		p.dirty[key] = true
	}
	if p.pendingSince.IsZero() {
		p.pendingSince = time.Now()
	}
	p.changeMu.Unlock()
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// Handler returns an informer handler for Services and EndpointSlices that
// records which Service changed and asks for a sync.
func (p *Proxier) Handler() informer.ResourceEventHandler {
	on := func(obj any) {
		if _, ok := obj.(*discoveryv1.EndpointSlice); ok && serviceKey(obj) == "" {
			return // a slice of no Service
		}
		p.OnChange(serviceKey(obj))
	}
	return informer.ResourceEventHandlerFuncs{
		AddFunc: on,
		UpdateFunc: func(old, obj any) {
			if k := serviceKey(old); k != "" && k != serviceKey(obj) {
				on(old)
			}
			on(obj)
		},
		DeleteFunc: on,
	}
}

// NodeConfig returns the Config the rules follow: opts.Config completed
// with node (nil: not known) as opts ask.
func NodeConfig(opts Options, node *corev1.Node) Config {
	base := opts.Config
	cfg := base
	cfg.NodePortAddresses = slices.Clone(base.NodePortAddresses)
	cfg.Zone = ""
	if node == nil {
		return cfg
	}
	cfg.Zone = node.Labels[corev1.LabelTopologyZone]
	if opts.NodePortsOnNodeIPs && len(base.NodePortAddresses) == 0 {
		for _, a := range node.Status.Addresses {
			if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
				continue
			}
			if ip := net.ParseIP(a.Address); ip != nil && ip.To4() != nil && !slices.Contains(cfg.NodePortAddresses, ip.String()) {
				cfg.NodePortAddresses = append(cfg.NodePortAddresses, ip.String())
			}
		}
	}
	if opts.LocalFromNodeCIDR && base.ClusterCIDR == "" {
		cidrs := node.Spec.PodCIDRs
		if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
			cidrs = []string{node.Spec.PodCIDR}
		}
		for _, c := range cidrs {
			if ip, ipn, err := net.ParseCIDR(c); err == nil && ip.To4() != nil {
				cfg.ClusterCIDR = ipn.String()
				break
			}
		}
	}
	return cfg
}

// SetNode gives the proxier its Node (nil: not known): its addresses, pod
// CIDR and zone, as Options ask. A change of the rules' Config makes the
// next sync a full one that builds every Service again.
func (p *Proxier) SetNode(node *corev1.Node) {
	cfg := NodeConfig(p.opts, node)
	p.changeMu.Lock()
	same := cfg.equal(p.nextCfg)
	if !same {
		p.nextCfg = cfg
	}
	p.changeMu.Unlock()
	if !same {
		p.logger.Info("node changed the rules' configuration", zap.Strings("nodePortAddresses", cfg.NodePortAddresses),
			zap.String("localCIDR", cfg.ClusterCIDR), zap.String("zone", cfg.Zone))
		p.OnChange("") // a full sync (Sync sees the new Config)
	}
}

// NodeHandler returns an informer handler for the proxier's own Node (an
// informer whose field selector is metadata.name=<node>). A deleted Node
// changes nothing: the rules keep what it said until it comes back (a
// kubelet registers it again), rather than stop detecting local traffic.
func (p *Proxier) NodeHandler() informer.ResourceEventHandler {
	set := func(obj any) {
		if n, ok := obj.(*corev1.Node); ok && n.Name == p.opts.NodeName {
			p.SetNode(n)
		}
	}
	return informer.ResourceEventHandlerFuncs{
		AddFunc:    set,
		UpdateFunc: func(_, obj any) { set(obj) },
		DeleteFunc: func(any) {
			p.logger.Warn("own Node deleted; the rules keep following what it said", zap.String("node", p.opts.NodeName))
		},
	}
}

// RequestFullSync makes the next sync a full one.
func (p *Proxier) RequestFullSync() {
	p.changeMu.Lock()
	p.needFull = true
	p.changeMu.Unlock()
}

// Healthy says whether the rules are recent: no change has waited longer
// than timeout for a successful sync. It also returns the last successful sync.
func (p *Proxier) Healthy(timeout time.Duration) (bool, time.Time) {
	p.changeMu.Lock()
	defer p.changeMu.Unlock()
	return p.pendingSince.IsZero() || time.Since(p.pendingSince) < timeout, p.lastSync
}

// LastSync describes the last successful sync.
func (p *Proxier) LastSync() SyncResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// Sync brings the rules in line with the listers once: a full sync at the
// first call, after a failure or when asked for, else a partial one.
func (p *Proxier) Sync(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	p.changeMu.Lock()
	dirty := p.dirty
	p.dirty = map[string]bool{}
	full := p.needFull || p.svcs == nil
	p.needFull = false
	if cfg := p.nextCfg; !cfg.equal(p.cfg) {
		p.cfg = cfg
		p.cfgGen++
		full = true
	}
	p.changeMu.Unlock()

	res, err := p.sync(ctx, full, dirty)
	if err != nil {
		p.metrics.failures.Inc()
		if !full {
			p.metrics.partialFails.Inc()
		}
		// Nothing of this sync is known to be in the kernel: start over.
		p.readExisting = true
		p.jumpsOK = false
		p.changeMu.Lock()
		p.needFull = true
		p.changeMu.Unlock()
		return err
	}
	res.Took = time.Since(start)
	p.last = res
	now := time.Now()
	p.changeMu.Lock()
	p.lastSync = now
	if !p.pendingSince.IsZero() && !p.pendingSince.After(start) {
		// What was queued before this sync is in the kernel; what came
		// since waits for the next one (and counts from this sync's start).
		p.pendingSince = time.Time{}
		if len(p.dirty) > 0 {
			p.pendingSince = start
		}
	}
	p.changeMu.Unlock()
	p.metrics.duration.Observe(res.Took.Seconds())
	if res.Full {
		p.metrics.full.Observe(res.Took.Seconds())
	} else {
		p.metrics.partial.Observe(res.Took.Seconds())
	}
	p.metrics.last.Set(float64(now.UnixNano()) / 1e9)
	for _, t := range []string{TableFilter, TableNAT} {
		p.metrics.rules.WithLabelValues(t).Set(float64(res.Rules[t]))
		p.metrics.written.WithLabelValues(t).Set(float64(res.Written[t]))
	}
	p.logger.Debug("synced proxy rules", zap.Bool("full", res.Full), zap.Int("services", res.Services),
		zap.Int("restoreBytes", len(res.Restore)), zap.Duration("restore", res.RestoreTook), zap.Duration("took", res.Took))
	return nil
}

// build returns the rules of the Service key (nil: it has none).
func (p *Proxier) build(key string, large bool) (*serviceRules, error) {
	ns, name, err := informer.SplitKey(key)
	if err != nil {
		return nil, err
	}
	svc, err := p.services.Get(ns, name)
	if err != nil {
		return nil, nil // deleted
	}
	sel := labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: name})
	return p.buildOne(svc, p.slices.ByNamespace(ns).List(sel), large, nil), nil
}

// buildOne returns the rules of svc with its slices (nil: it has none). old,
// the Service's rules of an earlier sync, is returned again when they were
// made from the same versions of the same objects.
func (p *Proxier) buildOne(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, large bool, old *serviceRules) *serviceRules {
	sig := signature(svc, slices)
	if old != nil && sig != "" && old.sig == sig && old.gen == p.cfgGen {
		return old
	}
	ports := ServicePorts([]*corev1.Service{svc}, slices)
	if len(ports) == 0 {
		return nil // headless or ExternalName
	}
	s := buildService(p.cfg, ports, large)
	s.sig, s.gen = sig, p.cfgGen
	return s
}

// signature names the versions of a Service and its EndpointSlices ("" if
// one has no resourceVersion): equal signatures give equal rules.
func signature(svc *corev1.Service, svcSlices []*discoveryv1.EndpointSlice) string {
	if svc.ResourceVersion == "" {
		return ""
	}
	parts := make([]string, 0, len(svcSlices)+1)
	for _, sl := range svcSlices {
		if sl.ResourceVersion == "" {
			return ""
		}
		parts = append(parts, sl.Name+"@"+sl.ResourceVersion)
	}
	slices.Sort(parts)
	return string(svc.UID) + "@" + svc.ResourceVersion + "|" + strings.Join(parts, "|")
}

// buildAll generates every rule and writes a full restore input into w,
// as a full sync does (without stale chains), and returns the rules of
// every Service.
func (p *Proxier) buildAll(w io.Writer) map[string]*serviceRules {
	cfg := p.cfg
	ports := ServicePorts(p.services.List(nil), p.slices.List(nil))
	endpoints := 0
	for _, sp := range ports {
		endpoints += len(sp.Endpoints)
	}
	large := endpoints > largeClusterEndpoints
	fw := newFullWriter(w)
	all := map[string]*serviceRules{}
	var keys []string
	for _, g := range groupByService(ports) {
		s := buildService(cfg, g, large)
		key := g[0].Namespace + "/" + g[0].Name
		all[key] = s
		keys = append(keys, key)
		fw.service(s)
	}
	slices.Sort(keys)
	top, counts := topChainText(cfg, func(yield func(*serviceRules) bool) {
		for _, k := range keys {
			if !yield(all[k]) {
				return
			}
		}
	})
	_ = fw.end(top, counts, nil)
	return all
}

// prepare starts, at a (re)start, reading what the tables hold and making
// the missing jump rules, while the rules are generated in memory. The jumps
// go in before the restore: on a first start the tables are still empty,
// which makes each iptables call cheap (iptables-legacy reads and writes a
// whole table per call), and a jump to an empty chain changes no traffic.
// The returned function waits for it (any number of times, from any
// goroutine) and returns the tables read (nil if they were not).
func (p *Proxier) prepare(ctx context.Context, full bool) func() (*savedTables, error) {
	read, jumps := p.readExisting, !p.jumpsOK
	if !full || (!read && !jumps) {
		return func() (*savedTables, error) { return nil, nil }
	}
	type prepared struct {
		saved *savedTables
		err   error
	}
	ch := make(chan prepared, 1)
	r := p.opts.Runner
	go func() { // owned by the sync, which always waits for it
		var out prepared
		if jumps && read {
			// go-iptables asks the binary its version once: meanwhile.
			var probe sync.WaitGroup
			probe.Go(func() { _, _ = r.goIPTables() })
			defer probe.Wait()
		}
		if read {
			save, err := r.Save(ctx, "")
			if err != nil {
				ch <- prepared{err: fmt.Errorf("read the tables: %w", err)}
				return
			}
			out.saved = parseSave(save)
		}
		if jumps {
			out.err = ensureJumps(ctx, r, out.saved)
		}
		ch <- out
	}()
	return sync.OnceValues(func() (*savedTables, error) {
		out := <-ch
		return out.saved, out.err
	})
}

// fullResult is what a full sync wrote.
type fullResult struct {
	svcs      map[string]*serviceRules
	keys      []string
	top       map[chainRef][]byte
	topCounts map[chainRef]int
	endpoints int
	large     bool
	res       SyncResult
}

// syncFull writes every chain in one restore, streamed to iptables-restore
// while the rules are generated, so that generating them and parsing them
// overlap.
func (p *Proxier) syncFull(ctx context.Context, getPrep func() (*savedTables, error)) (*fullResult, error) {
	cfg := p.cfg
	services := p.services.List(nil)
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	guess := 0 // endpoints, to choose the comment mode before building
	for _, sl := range p.slices.List(nil) {
		if name := sl.Labels[discoveryv1.LabelServiceName]; name != "" {
			key := sl.Namespace + "/" + name
			bySvc[key] = append(bySvc[key], sl)
			guess += len(sl.Endpoints) * len(sl.Ports)
		}
	}
	fr := &fullResult{large: p.largeCluster}
	if p.svcs == nil {
		fr.large = guess > largeClusterEndpoints
	}
	stream := newStreamBuffer(p.lastFullSize + 64<<10)
	done := make(chan error, 1)
	go func() { // owned by this call, which waits for it
		defer func() { _ = stream.Close() }()
		bw := bufio.NewWriterSize(stream, 256<<10)
		fw := newFullWriter(bw)
		fr.svcs = make(map[string]*serviceRules, len(services))
		fr.keys = make([]string, 0, len(services))
		for _, svc := range services {
			key := svc.Namespace + "/" + svc.Name
			s := p.buildOne(svc, bySvc[key], fr.large, p.svcs[key])
			if s == nil {
				continue
			}
			fr.svcs[key] = s
			fr.keys = append(fr.keys, key)
			fr.endpoints += s.endpoints
			fw.service(s)
		}
		slices.Sort(fr.keys)
		fr.top, fr.topCounts = topChainText(cfg, func(yield func(*serviceRules) bool) {
			for _, k := range fr.keys {
				if !yield(fr.svcs[k]) {
					return
				}
			}
		})
		saved, err := getPrep()
		if err != nil {
			done <- err
			return
		}
		// Stale: chains found at a (re)start or written before that are no
		// longer wanted.
		staleSet := map[string]bool{}
		if saved != nil {
			for _, c := range saved.chains[TableNAT] {
				if isOwnedChain(c) && !fw.active[c] {
					staleSet[c] = true
				}
			}
		}
		for _, s := range p.svcs {
			for _, c := range s.chains {
				if !fw.active[c] {
					staleSet[c] = true
				}
			}
		}
		fw.end(fr.top, fr.topCounts, slices.Sorted(maps.Keys(staleSet)))
		if err := fw.err; err != nil {
			done <- err
			return
		}
		fr.res.Written = fw.counts
		done <- bw.Flush()
	}()
	if _, err := getPrep(); err != nil { // the jumps before the restore
		<-done
		return nil, err
	}
	start := time.Now()
	err := p.opts.Runner.RestoreFrom(ctx, stream)
	fr.res.RestoreTook = time.Since(start)
	if werr := <-done; werr != nil {
		return nil, fmt.Errorf("generate the rules: %w", werr)
	}
	if err != nil {
		return nil, fmt.Errorf("iptables-restore: %w", err)
	}
	fr.res.Full, fr.res.Services = true, len(fr.keys)
	// Services built from now on; the rules of the others are right either way.
	fr.large = fr.endpoints > largeClusterEndpoints
	fr.res.Restore = stream.Bytes()
	p.lastFullSize = len(fr.res.Restore)
	return fr, nil
}

func (p *Proxier) sync(ctx context.Context, full bool, dirty map[string]bool) (SyncResult, error) {
	r := p.opts.Runner
	if !p.jumpsOK {
		full = true
	}

	// The new rules of the Services that changed (nil: it has none now).
	changed := map[string]*serviceRules{}
	large := p.largeCluster
	endpoints := 0
	if !full {
		endpoints = p.endpoints
		for key := range dirty {
			s, err := p.build(key, large)
			if err != nil {
				return SyncResult{}, err
			}
			changed[key] = s
			if old := p.svcs[key]; old != nil {
				endpoints -= old.endpoints
			}
			if s != nil {
				endpoints += s.endpoints
			}
		}
		// Services built from now on carry comments or not by the new
		// count; the rules of the others are right either way (as upstream).
		large = endpoints > largeClusterEndpoints
	}

	var (
		keys      []string
		top       map[chainRef][]byte
		topCounts map[chainRef]int
		res       SyncResult
	)
	if full {
		getPrep := p.prepare(ctx, full)
		fr, err := p.syncFull(ctx, getPrep)
		if err != nil {
			return SyncResult{}, err
		}
		changed = fr.svcs
		for key := range p.svcs {
			if _, ok := changed[key]; !ok {
				changed[key] = nil
			}
		}
		keys, top, topCounts, endpoints, large, res = fr.keys, fr.top, fr.topCounts, fr.endpoints, fr.large, fr.res
	} else {
		// The sorted keys of the Services with rules after this sync.
		keys = p.keys
		reshaped := false
		for key, s := range changed {
			if (s == nil) != (p.svcs[key] == nil) {
				reshaped = true
			}
		}
		if reshaped {
			set := map[string]bool{}
			for _, k := range p.keys {
				set[k] = true
			}
			for key, s := range changed {
				set[key] = s != nil
			}
			keys = nil
			for k, ok := range set {
				if ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
		}
		get := func(key string) *serviceRules {
			if s, ok := changed[key]; ok {
				return s
			}
			return p.svcs[key]
		}
		// The top-level chains are assembled again (from every Service's
		// part) only when a changed Service's part of them changed: an
		// endpoint change within a Service leaves them alone.
		topSame := !reshaped
		for key, s := range changed {
			if !topSame {
				break
			}
			topSame = s.sameShared(p.svcs[key])
		}
		if topSame {
			top, topCounts = p.written, p.writtenN
		} else {
			top, topCounts = topChainText(p.cfg, func(yield func(*serviceRules) bool) {
				for _, k := range keys {
					if !yield(get(k)) {
						return
					}
				}
			})
		}

		rt := newRestoreText()
		rebuilt := 0
		for _, ref := range topOrder {
			if !bytes.Equal(top[ref], p.written[ref]) {
				rt.chain(ref.table, ref.chain)
			}
		}
		for _, ref := range topRules {
			if !bytes.Equal(top[ref], p.written[ref]) {
				rt.write(ref.table, top[ref], topCounts[ref])
			}
		}
		for _, key := range slices.Sorted(maps.Keys(changed)) {
			s, old := changed[key], p.svcs[key]
			if s != nil && s.sameChains(old) {
				continue
			}
			rebuilt++
			var now map[string]bool
			if s != nil {
				now = map[string]bool{}
				for _, c := range s.chains {
					rt.chain(TableNAT, c)
					now[c] = true
				}
				rt.write(TableNAT, s.rules.b.Bytes(), s.rules.n)
			}
			if old != nil {
				for _, c := range old.chains {
					if !now[c] {
						rt.delete(TableNAT, c)
					}
				}
			}
		}
		res = SyncResult{Services: rebuilt, Written: maps.Clone(rt.counts)}
		if data := rt.bytes(); len(data) > 0 {
			start := time.Now()
			if err := r.Restore(ctx, data); err != nil {
				return SyncResult{}, fmt.Errorf("iptables-restore: %w", err)
			}
			res.RestoreTook = time.Since(start)
			res.Restore = data
		}
	}
	p.jumpsOK = true

	// The kernel now holds the new rules.
	var flows []UDPFlow
	if p.opts.Conntrack != nil && p.svcs != nil {
		for key, s := range changed {
			flows = append(flows, staleUDPFlows(p.svcs[key], s)...)
		}
	}
	if p.svcs == nil || full {
		p.svcs = map[string]*serviceRules{}
	}
	for key, s := range changed {
		if s == nil {
			delete(p.svcs, key)
		} else {
			p.svcs[key] = s
		}
	}
	p.keys = keys
	p.endpoints = endpoints
	p.largeCluster = large
	p.written, p.writtenN = top, topCounts
	p.readExisting = false
	res.Rules = map[string]int{}
	for ref, n := range topCounts {
		res.Rules[ref.table] += n
	}
	for _, s := range p.svcs {
		res.Rules[TableNAT] += s.rules.n
	}
	if len(flows) > 0 {
		if err := p.opts.Conntrack.DeleteUDP(flows); err != nil {
			// The rules are right; stale flows only hurt until they expire.
			p.logger.Warn("delete stale UDP conntrack entries", zap.Int("flows", len(flows)), zap.Error(err))
		}
	}
	return res, nil
}

// staleUDPFlows returns the conntrack entries to delete when a Service's
// rules go from old to s (either may be nil): flows DNATed to a UDP
// endpoint that is gone, and flows to a UDP port that had no endpoint (they
// were created without NAT and would keep bypassing the new rules).
func staleUDPFlows(old, s *serviceRules) []UDPFlow {
	if old == nil {
		old = &serviceRules{}
	}
	now := map[string]udpPort{}
	if s != nil {
		for _, u := range s.udp {
			now[u.name] = u
		}
	}
	var out []UDPFlow
	for _, o := range old.udp {
		n, ok := now[o.name]
		for _, ep := range o.endpoints {
			if ok && slices.Contains(n.endpoints, ep) {
				continue
			}
			for _, ip := range o.ips {
				out = append(out, UDPFlow{OrigDst: ip, OrigDstPort: o.port, ReplySrc: ep})
			}
			if o.nodePort != 0 {
				out = append(out, UDPFlow{OrigDstPort: o.nodePort, ReplySrc: ep})
			}
		}
	}
	was := map[string]udpPort{}
	for _, o := range old.udp {
		was[o.name] = o
	}
	for _, n := range now {
		if o, ok := was[n.name]; len(n.endpoints) == 0 || (ok && len(o.endpoints) > 0) {
			continue
		}
		for _, ip := range n.ips {
			out = append(out, UDPFlow{OrigDst: ip, OrigDstPort: n.port})
		}
		if n.nodePort != 0 {
			out = append(out, UDPFlow{OrigDstPort: n.nodePort})
		}
	}
	return out
}

// checkJumps checks the jump rules and top-level chains with go-iptables,
// recreating what is missing; it returns whether anything was.
func (p *Proxier) checkJumps(ctx context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	made, err := EnsureJumps(ctx, p.opts.Runner)
	if err != nil {
		p.jumpsOK = false
		return false, err
	}
	return made > 0, nil
}

// Run syncs at start (fully), on every change (at most once per
// MinSyncPeriod, partially), fully every SyncPeriod, checks the jump rules
// every CheckPeriod, and retries failures with back-off, until ctx is done.
func (p *Proxier) Run(ctx context.Context) {
	p.RequestFullSync()
	p.OnChange("")
	resync := time.NewTicker(p.opts.SyncPeriod)
	defer resync.Stop()
	check := time.NewTicker(p.opts.CheckPeriod)
	defer check.Stop()
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
			p.RequestFullSync()
		case <-check.C:
			missing, err := p.checkJumps(ctx)
			switch {
			case err != nil:
				p.logger.Error("check iptables jump rules", zap.Error(err))
				p.RequestFullSync()
			case missing:
				p.logger.Warn("iptables jump rules or chains were missing; resyncing fully")
				p.RequestFullSync()
			default:
				continue
			}
		case <-retry.C:
		}
		if wait := p.opts.MinSyncPeriod - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
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

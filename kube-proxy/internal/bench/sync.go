package bench

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/informer"
)

// CaseResult is one backend at one scale.
type CaseResult struct {
	Backend   string
	Services  int
	Endpoints int
	Rules     map[string]int
	Bytes     int // size of the full restore input
	// Load is the full sync that loaded the ruleset into the namespace the
	// warm, partial and idle measures use, with a flushing restore.
	Load time.Duration
	// Cold: an empty namespace each time; Warm: over the proxy's own rules.
	ColdRaw, ColdFull, WarmRaw, WarmFull []time.Duration
	// RawOverLimit says the raw --noflush restore of the full ruleset did
	// not finish within the limit, so the full syncs were not timed.
	RawOverLimit bool
	// FullOverLimit says a cold full sync did not finish within the limit
	// though the raw restore did.
	FullOverLimit bool
	// FlushRaw and FlushFull, measured only when the --noflush restore is
	// over the limit: a cold raw restore and a cold full sync, both with a
	// flushing iptables-restore (which kube-proxy never uses, but which
	// loads the same ruleset in seconds), so that what the proxy adds to
	// the restore is still measured.
	FlushRaw, FlushFull []time.Duration
	// Reps is how often the full syncs were timed: the configured number,
	// or one when the first raw restore took longer than Config.Slow.
	Reps    int
	Partial []time.Duration
	// PartialOwn is the part of each partial sync outside its
	// iptables-restore call: what the proxy itself adds.
	PartialOwn   []time.Duration
	PartialRaw   []time.Duration
	PartialBytes []int
	// Idle CPU of the process over IdleWindow once the running proxy's first
	// sync was done (zero window: not measured).
	IdleCPU, IdleWindow time.Duration
}

// store is the proxier's hand-filled informer caches.
type store struct {
	services, slices informer.Indexer
	svcLs            *informer.Lister[*corev1.Service]
	sliceLs          *informer.Lister[*discoveryv1.EndpointSlice]
	nextIP           netip.Addr
	version          int // of the changed EndpointSlices
}

func indexer() informer.Indexer {
	return informer.NewIndexer(informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc})
}

// generate makes n ClusterIP Services (every tenth a NodePort) in 20
// namespaces, each with one EndpointSlice of eps ready endpoints on three nodes.
func generate(n, eps int) (*store, error) {
	s := &store{services: indexer(), slices: indexer(), nextIP: netip.MustParseAddr("10.200.0.1"), version: 1}
	s.svcLs = informer.NewLister[*corev1.Service](s.services)
	s.sliceLs = informer.NewLister[*discoveryv1.EndpointSlice](s.slices)
	clusterIP := netip.MustParseAddr("10.96.0.10")
	podIP := netip.MustParseAddr("10.128.0.2")
	for i := range n {
		svc := serviceObject(i, clusterIP.String())
		clusterIP = clusterIP.Next()
		sl := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name + "-abcde", ResourceVersion: "1",
				Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		for e := range eps {
			sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{
				Addresses:  []string{podIP.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				NodeName:   ptr.To(fmt.Sprintf("node-%d", e%3)),
			})
			podIP = podIP.Next()
		}
		if err := s.services.Add(svc); err != nil {
			return nil, err
		}
		if err := s.slices.Add(sl); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func serviceObject(i int, clusterIP string) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("bench-%d", i%20), Name: fmt.Sprintf("svc-%d", i),
			UID: types.UID(fmt.Sprintf("uid-%d", i)), ResourceVersion: "1"},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: clusterIP, ClusterIPs: []string{clusterIP},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if i%10 == 0 {
		svc.Spec.Type = corev1.ServiceTypeNodePort
		svc.Spec.Ports[0].NodePort = int32(30000 + i/10%2768)
	}
	return svc
}

// changeEndpoint replaces the first endpoint of Service i's slice by a new
// pod IP (a pod replaced) and returns the Service's key.
func (s *store) changeEndpoint(i int) (string, error) {
	key := fmt.Sprintf("bench-%d/svc-%d-abcde", i%20, i)
	obj, ok, err := s.slices.GetByKey(key)
	if err != nil || !ok {
		return "", fmt.Errorf("slice %s: %v", key, err)
	}
	sl := obj.(*discoveryv1.EndpointSlice).DeepCopy()
	sl.Endpoints[0].Addresses = []string{s.nextIP.String()}
	s.nextIP = s.nextIP.Next()
	s.version++
	sl.ResourceVersion = fmt.Sprint(s.version)
	if err := s.slices.Update(sl); err != nil {
		return "", err
	}
	return fmt.Sprintf("bench-%d/svc-%d", i%20, i), nil
}

var proxyConfig = iptables.Config{NodeName: "node-0", ClusterCIDR: "10.128.0.0/9"}

func (s *store) proxier(ns *namespace, backend string) (*iptables.Proxier, *iptables.Runner) {
	r := &iptables.Runner{NetNS: ns.path(), Legacy: backend == "legacy"}
	return iptables.New(s.svcLs, s.sliceLs, iptables.Options{Config: proxyConfig, Runner: r}), r
}

// timed runs f with the limit and returns how long it took.
func timed(ctx context.Context, limit time.Duration, f func(context.Context) error) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	took := time.Since(start)
	if err != nil && ctx.Err() == context.DeadlineExceeded {
		return took, errOverLimit
	}
	return took, err
}

var errOverLimit = errors.New("over the limit")

func runCase(ctx context.Context, cfg *Config, backend string, n int) (*CaseResult, error) {
	res := &CaseResult{Backend: backend, Services: n, Endpoints: cfg.Endpoints}
	s, err := generate(n, cfg.Endpoints)
	if err != nil {
		return nil, err
	}

	// The namespace the warm, partial and idle measures use, loaded by the
	// proxy's first sync with a flushing restore (fast with either backend).
	main, err := newNamespace(ctx)
	if err != nil {
		return nil, err
	}
	defer main.remove()
	p, r := s.proxier(main, backend)
	r.Flush = true
	if res.Load, err = timed(ctx, cfg.Limit, p.Sync); err != nil {
		return nil, fmt.Errorf("load the ruleset: %w", err)
	}
	r.Flush = false
	full := p.LastSync()
	text := full.Restore
	res.Rules, res.Bytes = full.Rules, len(text)
	cfg.logf("  loaded %s rules (%s) in %s", benchkit.Num(int64(full.Rules["nat"]+full.Rules["filter"])), benchkit.FormatBytes(int64(len(text))), benchkit.FormatDuration(res.Load))

	// Cold: each in a new namespace; raw and proxy alternate who goes first.
	rawCold := func() error {
		ns, err := newNamespace(ctx)
		if err != nil {
			return err
		}
		defer ns.remove()
		raw := &iptables.Runner{NetNS: ns.path(), Legacy: backend == "legacy"}
		d, err := timed(ctx, cfg.Limit, func(ctx context.Context) error { return raw.Restore(ctx, text) })
		if err != nil {
			return err
		}
		res.ColdRaw = append(res.ColdRaw, d)
		return nil
	}
	proxyCold := func() error {
		ns, err := newNamespace(ctx)
		if err != nil {
			return err
		}
		defer ns.remove()
		p, _ := s.proxier(ns, backend)
		d, err := timed(ctx, cfg.Limit, p.Sync)
		if errors.Is(err, errOverLimit) {
			res.FullOverLimit = true
			return err
		}
		if err != nil {
			return err
		}
		res.ColdFull = append(res.ColdFull, d)
		return nil
	}
	res.Reps = cfg.Reps
	for i := 0; i < res.Reps; i++ {
		steps := []func() error{rawCold, proxyCold}
		if i%2 == 1 {
			steps[0], steps[1] = steps[1], steps[0]
		}
		for _, step := range steps {
			if err := step(); errors.Is(err, errOverLimit) {
				if !res.FullOverLimit {
					res.RawOverLimit = true
				}
				cfg.logf("  a --noflush restore of the full ruleset took over %v: full syncs not timed further", cfg.Limit)
				break
			} else if err != nil {
				return nil, err
			}
		}
		if res.RawOverLimit || res.FullOverLimit {
			break
		}
		cfg.logf("  cold: raw %s, proxy %s", fmtLast(res.ColdRaw), fmtLast(res.ColdFull))
		if i == 0 && cfg.Slow > 0 && res.ColdRaw[0] > cfg.Slow && res.Reps > 1 {
			res.Reps = 1
			cfg.logf("  a raw restore takes over %v: the full syncs of this case are timed once", cfg.Slow)
		}
	}

	// The --noflush restore does not fit in the limit: time what the proxy
	// adds to a restore with flushing restores instead.
	if res.RawOverLimit || res.FullOverLimit {
		flushRaw := func() error {
			ns, err := newNamespace(ctx)
			if err != nil {
				return err
			}
			defer ns.remove()
			raw := &iptables.Runner{NetNS: ns.path(), Legacy: backend == "legacy", Flush: true}
			d, err := timed(ctx, cfg.Limit, func(ctx context.Context) error { return raw.Restore(ctx, text) })
			if err != nil {
				return fmt.Errorf("raw flushing restore: %w", err)
			}
			res.FlushRaw = append(res.FlushRaw, d)
			return nil
		}
		flushFull := func() error {
			ns, err := newNamespace(ctx)
			if err != nil {
				return err
			}
			defer ns.remove()
			p, r := s.proxier(ns, backend)
			r.Flush = true
			d, err := timed(ctx, cfg.Limit, p.Sync)
			if err != nil {
				return fmt.Errorf("full sync with a flushing restore: %w", err)
			}
			res.FlushFull = append(res.FlushFull, d)
			return nil
		}
		for i := range cfg.Reps {
			steps := []func() error{flushRaw, flushFull}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return nil, err
				}
			}
			cfg.logf("  cold, flushing restores: raw %s, proxy %s", fmtLast(res.FlushRaw), fmtLast(res.FlushFull))
		}
	}

	// Warm: over the rules already there (the periodic full resync).
	if !res.RawOverLimit && !res.FullOverLimit {
		for i := range res.Reps {
			rawWarm := func() error {
				d, err := timed(ctx, cfg.Limit, func(ctx context.Context) error { return r.Restore(ctx, text) })
				res.WarmRaw = append(res.WarmRaw, d)
				return err
			}
			proxyWarm := func() error {
				p.RequestFullSync()
				d, err := timed(ctx, cfg.Limit, p.Sync)
				res.WarmFull = append(res.WarmFull, d)
				return err
			}
			steps := []func() error{rawWarm, proxyWarm}
			if i%2 == 1 {
				steps[0], steps[1] = steps[1], steps[0]
			}
			for _, step := range steps {
				if err := step(); err != nil {
					return nil, fmt.Errorf("warm full sync: %w", err)
				}
			}
			cfg.logf("  warm: raw %s, proxy %s", fmtLast(res.WarmRaw), fmtLast(res.WarmFull))
		}
	}

	// One endpoint changes; the proxy syncs (partially); the same text is
	// then restored alone (it is idempotent: its chains are rewritten and
	// the removed endpoint's chain is made and deleted again).
	for i := range cfg.Changes {
		key, err := s.changeEndpoint((i*7919 + 13) % n)
		if err != nil {
			return nil, err
		}
		p.OnChange(key)
		d, err := timed(ctx, cfg.Limit, p.Sync)
		if err != nil {
			return nil, fmt.Errorf("partial sync: %w", err)
		}
		last := p.LastSync()
		if last.Full {
			return nil, errors.New("an endpoint change made a full sync")
		}
		res.Partial = append(res.Partial, d)
		res.PartialOwn = append(res.PartialOwn, max(0, last.Took-last.RestoreTook))
		res.PartialBytes = append(res.PartialBytes, len(last.Restore))
		d, err = timed(ctx, cfg.Limit, func(ctx context.Context) error { return r.Restore(ctx, last.Restore) })
		if err != nil {
			return nil, fmt.Errorf("raw partial restore: %w", err)
		}
		res.PartialRaw = append(res.PartialRaw, d)
	}
	cfg.logf("  one endpoint change: proxy p50 %s p99 %s (its own part p99 %s); raw restore p50 %s",
		benchkit.FormatDuration(benchkit.Median(res.Partial)), benchkit.FormatDuration(p99(res.Partial)),
		benchkit.FormatDuration(p99(res.PartialOwn)), benchkit.FormatDuration(benchkit.Median(res.PartialRaw)))

	// The running proxy idling: its first sync (full, --noflush) must fit
	// in the limit, which is what the cold measure found out.
	if !res.RawOverLimit && !res.FullOverLimit && cfg.Idle > 0 {
		cpu, err := idleCPU(ctx, cfg, p)
		if err != nil {
			return nil, err
		}
		res.IdleCPU, res.IdleWindow = cpu, cfg.Idle
		cfg.logf("  idle: %s CPU in %v", benchkit.FormatDuration(cpu), cfg.Idle)
	}
	return res, nil
}

// idleCPU runs the proxier (as kube-proxy does, default periods) and
// returns the process's CPU over cfg.Idle once its first sync is done.
func idleCPU(ctx context.Context, cfg *Config, p *iptables.Proxier) (time.Duration, error) {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	before := p.LastSync()
	go func() { defer close(done); p.Run(runCtx) }()
	defer func() { stop(); <-done }()
	deadline := time.Now().Add(cfg.Limit)
	for {
		if ok, last := p.Healthy(time.Hour); ok && p.LastSync().Took != before.Took && !last.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			return 0, errors.New("the running proxy's first sync did not finish within the limit")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	start, err := benchkit.ProcessCPU(os.Getpid())
	if err != nil {
		return 0, err
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(cfg.Idle):
	}
	end, err := benchkit.ProcessCPU(os.Getpid())
	return end - start, err
}

func fmtLast(d []time.Duration) string {
	if len(d) == 0 {
		return "—"
	}
	return benchkit.FormatDuration(d[len(d)-1])
}

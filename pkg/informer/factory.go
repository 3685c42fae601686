package informer

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/client"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// WithNamespace limits a factory's informers to one namespace.
func WithNamespace(ns string) Option { return func(o *options) { o.namespace = ns } }

// WithTweakListOptions edits every list and watch request of a factory's
// informers, e.g. to set a field selector such as spec.nodeName=<node>.
func WithTweakListOptions(tweak func(*metav1.ListOptions)) Option {
	return func(o *options) { o.tweak = tweak }
}

// Factory hands out one shared informer per resource, created on first use
// and indexed by namespace.
type Factory struct {
	c      *client.Client
	resync time.Duration
	opts   options

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]SharedInformer
	started   map[schema.GroupVersionResource]bool
	wg        sync.WaitGroup
}

// NewFactory returns a factory of informers over c with the given resync
// period (0 for none).
func NewFactory(c *client.Client, resync time.Duration, opts ...Option) *Factory {
	return &Factory{
		c:         c,
		resync:    resync,
		opts:      buildOptions(opts),
		informers: map[schema.GroupVersionResource]SharedInformer{},
		started:   map[schema.GroupVersionResource]bool{},
	}
}

// NewFilteredFactory is NewFactory limited to namespace ("" for all) with
// every request edited by tweak (which may be nil).
func NewFilteredFactory(c *client.Client, resync time.Duration, namespace string, tweak func(*metav1.ListOptions), opts ...Option) *Factory {
	return NewFactory(c, resync, append([]Option{WithNamespace(namespace), WithTweakListOptions(tweak)}, opts...)...)
}

// ForResource returns the shared informer of gvr, creating it if needed.
// Informers created after Start run at the next Start.
func (f *Factory) ForResource(gvr schema.GroupVersionResource) SharedInformer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[gvr]; ok {
		return inf
	}
	var example runtime.Object
	if r, ok := scheme.LookupResource(gvr); ok {
		if obj, err := r.New(); err == nil {
			example = obj
		}
	}
	if example == nil {
		f.opts.logger.Warn("resource not in the client scheme; objects are not type-checked", zap.String("resource", gvr.String()))
	}
	lw := NewListWatch(f.c, gvr, f.opts.namespace, f.opts.tweak)
	inf := NewSharedInformer(lw, example, f.resync, Indexers{NamespaceIndex: NamespaceIndexFunc, LabelIndex: LabelIndexFunc}, WithLogger(f.opts.logger))
	f.informers[gvr] = inf
	return inf
}

// Start runs, until ctx is done, every informer not yet started. Wait waits
// for them to return.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for gvr, inf := range f.informers {
		if f.started[gvr] {
			continue
		}
		f.started[gvr] = true
		f.wg.Go(func() { inf.Run(ctx) })
	}
}

// Wait blocks until every informer started by Start has returned, which
// they do once their context is done.
func (f *Factory) Wait() { f.wg.Wait() }

// WaitForCacheSync waits until every started informer has synced or ctx is
// done, and reports each one's state.
func (f *Factory) WaitForCacheSync(ctx context.Context) map[schema.GroupVersionResource]bool {
	f.mu.Lock()
	started := map[schema.GroupVersionResource]SharedInformer{}
	for gvr, inf := range f.informers {
		if f.started[gvr] {
			started[gvr] = inf
		}
	}
	f.mu.Unlock()
	out := make(map[schema.GroupVersionResource]bool, len(started))
	for gvr, inf := range started {
		out[gvr] = WaitForCacheSync(ctx, inf.HasSynced)
	}
	return out
}

// ForType returns the factory's informer for T's resource (T is a pointer
// to a served type, e.g. *corev1.Pod) and a lister over its cache.
func ForType[T runtime.Object](f *Factory) (SharedInformer, *Lister[T]) {
	r, err := scheme.ResourceFor(newOf[T]())
	if err != nil {
		panic(fmt.Sprintf("informer.ForType: %v", err)) // programming error
	}
	inf := f.ForResource(r.GVR)
	return inf, NewLister[T](inf.GetIndexer())
}

// newOf returns a new *X for T = *X.
func newOf[T runtime.Object]() runtime.Object {
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("informer: %v is not a pointer type", typ)) // programming error
	}
	obj, _ := reflect.New(typ.Elem()).Interface().(runtime.Object)
	return obj
}

// syncPollPeriod is how often WaitForCacheSync checks.
const syncPollPeriod = 100 * time.Millisecond

// WaitForCacheSync waits until every function returns true (true) or ctx is
// done (false).
func WaitForCacheSync(ctx context.Context, synced ...func() bool) bool {
	t := time.NewTicker(syncPollPeriod)
	defer t.Stop()
	for {
		all := true
		for _, f := range synced {
			if !f() {
				all = false
				break
			}
		}
		if all {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

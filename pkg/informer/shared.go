// Package informer is the client-side cache of the apiserver: reflectors that
// list and watch a resource, shared informers that keep an indexed store and
// notify event handlers, a factory of one shared informer per resource, and
// typed listers over the stores. It follows client-go's tools/cache.
package informer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// SharedInformer keeps an indexed cache of one resource and notifies any
// number of handlers of its changes.
type SharedInformer interface {
	// AddEventHandler registers h. A handler added after the informer has
	// synced first receives an add for every cached object.
	AddEventHandler(h ResourceEventHandler) (Registration, error)
	// RemoveEventHandler stops notifying a handler.
	RemoveEventHandler(r Registration) error
	// AddIndexers adds indexes to the store.
	AddIndexers(indexers Indexers) error
	GetStore() Store
	GetIndexer() Indexer
	// Run lists and watches until ctx is done, then waits for its
	// goroutines, handlers' included, to stop. A second Run returns at once.
	Run(ctx context.Context)
	// HasSynced says whether the store holds the first full list.
	HasSynced() bool
	// LastSyncResourceVersion is the resourceVersion of the last list,
	// event or bookmark seen.
	LastSyncResourceVersion() string
	// IsStopped says whether Run has returned.
	IsStopped() bool
}

// Option configures an informer or a factory.
type Option func(*options)

type options struct {
	logger    *zap.Logger
	namespace string
	tweak     func(*metav1.ListOptions)
}

// WithLogger sets the logger; the default logs nothing.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.logger = l } }

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	return o
}

// NewSharedInformer returns an informer of the objects lw lists, of
// exampleObj's type, indexed by indexers. With resync > 0, every handler
// receives an update (old == new) for every cached object each period.
func NewSharedInformer(lw ListerWatcher, exampleObj runtime.Object, resync time.Duration, indexers Indexers, opts ...Option) SharedInformer {
	o := buildOptions(opts)
	name := "informer"
	if exampleObj != nil {
		name = fmt.Sprintf("%T", exampleObj)
	}
	s := &sharedInformer{
		indexer: NewIndexer(indexers),
		resync:  resync,
		logger:  o.logger.Named("informer").With(zap.String("type", name)),
	}
	s.reflector = NewReflector(name, lw, exampleObj, storeSink{s}, o.logger)
	return s
}

type sharedInformer struct {
	indexer   Indexer
	reflector *Reflector
	resync    time.Duration
	logger    *zap.Logger
	synced    atomic.Bool

	// mu serialises store changes with handler registration, so a new
	// handler sees exactly the cache plus the later changes.
	mu        sync.Mutex
	listeners []*listener
	started   bool
	stopped   bool
	stop      <-chan struct{} // the Run context's Done, for handlers added later
	handlerWG sync.WaitGroup
}

func (s *sharedInformer) GetStore() Store                     { return s.indexer }
func (s *sharedInformer) GetIndexer() Indexer                 { return s.indexer }
func (s *sharedInformer) HasSynced() bool                     { return s.synced.Load() }
func (s *sharedInformer) AddIndexers(indexers Indexers) error { return s.indexer.AddIndexers(indexers) }
func (s *sharedInformer) LastSyncResourceVersion() string {
	return s.reflector.LastSyncResourceVersion()
}

func (s *sharedInformer) IsStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// errStopped is returned when adding a handler to a stopped informer.
var errStopped = errors.New("informer has stopped")

func (s *sharedInformer) AddEventHandler(h ResourceEventHandler) (Registration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, errStopped
	}
	l := newListener(h)
	s.listeners = append(s.listeners, l)
	if s.started {
		s.startListener(l)
	}
	if s.synced.Load() {
		for _, obj := range s.indexer.List() {
			l.add(notification{kind: addNotification, obj: obj, inInitialList: true})
		}
		l.add(notification{kind: syncedMarker})
	}
	return l, nil
}

func (s *sharedInformer) RemoveEventHandler(r Registration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.listeners {
		if Registration(l) == r {
			s.listeners = append(s.listeners[:i:i], s.listeners[i+1:]...)
			l.remove()
			return nil
		}
	}
	return fmt.Errorf("handler not registered")
}

// startListener runs l's goroutine; s.mu is held.
func (s *sharedInformer) startListener(l *listener) {
	s.handlerWG.Add(1)
	go func() {
		defer s.handlerWG.Done()
		l.run(s.stop)
	}()
}

func (s *sharedInformer) Run(ctx context.Context) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		s.logger.Warn("informer already started")
		return
	}
	s.started = true
	s.stop = ctx.Done()
	for _, l := range s.listeners {
		s.startListener(l)
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	if s.resync > 0 {
		wg.Go(func() { s.resyncLoop(ctx) })
	}
	s.reflector.Run(ctx)
	wg.Wait()

	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.handlerWG.Wait()
}

func (s *sharedInformer) resyncLoop(ctx context.Context) {
	t := time.NewTicker(s.resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		if s.synced.Load() {
			for _, obj := range s.indexer.List() {
				s.distribute(notification{kind: updateNotification, oldObj: obj, obj: obj})
			}
		}
		s.mu.Unlock()
	}
}

// distribute queues n for every handler; s.mu is held.
func (s *sharedInformer) distribute(n notification) {
	for _, l := range s.listeners {
		l.add(n)
	}
}

// storeSink applies a reflector's output to the cache and notifies handlers.
type storeSink struct{ s *sharedInformer }

func (k storeSink) Add(obj runtime.Object) error    { return k.upsert(obj) }
func (k storeSink) Update(obj runtime.Object) error { return k.upsert(obj) }

func (k storeSink) upsert(obj runtime.Object) error {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	old, exists, err := s.indexer.Get(obj)
	if err != nil {
		return err
	}
	err = s.indexer.Update(obj)
	if exists {
		s.distribute(notification{kind: updateNotification, oldObj: old, obj: obj})
	} else {
		s.distribute(notification{kind: addNotification, obj: obj})
	}
	return err
}

func (k storeSink) Delete(obj runtime.Object) error {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists, err := s.indexer.Get(obj)
	if err != nil || !exists {
		return err // deleting what we never saw: nothing to tell
	}
	if err := s.indexer.Delete(obj); err != nil {
		return err
	}
	s.distribute(notification{kind: deleteNotification, obj: obj})
	return nil
}

// Replace turns a (re)list into notifications: adds for new objects,
// updates for known ones, and tombstoned deletes for objects that vanished
// while the informer was not watching.
func (k storeSink) Replace(objs []runtime.Object, _ string) error {
	s := k.s
	s.mu.Lock()
	defer s.mu.Unlock()
	initial := !s.synced.Load()
	listed := make(map[string]struct{}, len(objs))
	var errs []error
	for _, obj := range objs {
		key, err := KeyFunc(obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := listed[key]; dup {
			continue
		}
		listed[key] = struct{}{}
		old, exists, _ := s.indexer.GetByKey(key)
		if err := s.indexer.Update(obj); err != nil {
			errs = append(errs, err)
		}
		if exists {
			s.distribute(notification{kind: updateNotification, oldObj: old, obj: obj})
		} else {
			s.distribute(notification{kind: addNotification, obj: obj, inInitialList: initial})
		}
	}
	for _, key := range s.indexer.ListKeys() {
		if _, ok := listed[key]; ok {
			continue
		}
		old, exists, _ := s.indexer.GetByKey(key)
		if !exists {
			continue
		}
		if err := s.indexer.Delete(old); err != nil {
			errs = append(errs, err)
			continue
		}
		s.distribute(notification{kind: deleteNotification, obj: DeletedFinalStateUnknown{Key: key, Obj: old}})
	}
	if initial {
		s.synced.Store(true)
		s.distribute(notification{kind: syncedMarker})
	}
	return errors.Join(errs...)
}

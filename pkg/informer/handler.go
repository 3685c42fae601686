package informer

import (
	"sync"
	"sync/atomic"
)

// ResourceEventHandler receives an informer's notifications. Objects are the
// informer's runtime.Objects, shared with its cache: do not modify them.
// OnDelete may receive a DeletedFinalStateUnknown.
type ResourceEventHandler interface {
	OnAdd(obj any, isInInitialList bool)
	OnUpdate(oldObj, newObj any)
	OnDelete(obj any)
}

// ResourceEventHandlerFuncs adapts functions to ResourceEventHandler; nil
// functions are skipped.
type ResourceEventHandlerFuncs struct {
	AddFunc    func(obj any)
	UpdateFunc func(oldObj, newObj any)
	DeleteFunc func(obj any)
}

// OnAdd calls AddFunc.
func (f ResourceEventHandlerFuncs) OnAdd(obj any, _ bool) {
	if f.AddFunc != nil {
		f.AddFunc(obj)
	}
}

// OnUpdate calls UpdateFunc.
func (f ResourceEventHandlerFuncs) OnUpdate(oldObj, newObj any) {
	if f.UpdateFunc != nil {
		f.UpdateFunc(oldObj, newObj)
	}
}

// OnDelete calls DeleteFunc.
func (f ResourceEventHandlerFuncs) OnDelete(obj any) {
	if f.DeleteFunc != nil {
		f.DeleteFunc(obj)
	}
}

// FilteringResourceEventHandler passes on the notifications of objects that
// FilterFunc accepts; an update that moves an object in or out of the filter
// becomes an add or a delete.
type FilteringResourceEventHandler struct {
	FilterFunc func(obj any) bool
	Handler    ResourceEventHandler
}

// OnAdd implements ResourceEventHandler.
func (f FilteringResourceEventHandler) OnAdd(obj any, isInInitialList bool) {
	if f.FilterFunc(obj) {
		f.Handler.OnAdd(obj, isInInitialList)
	}
}

// OnUpdate implements ResourceEventHandler.
func (f FilteringResourceEventHandler) OnUpdate(oldObj, newObj any) {
	was, is := f.FilterFunc(oldObj), f.FilterFunc(newObj)
	switch {
	case was && is:
		f.Handler.OnUpdate(oldObj, newObj)
	case !was && is:
		f.Handler.OnAdd(newObj, false)
	case was && !is:
		f.Handler.OnDelete(oldObj)
	}
}

// OnDelete implements ResourceEventHandler.
func (f FilteringResourceEventHandler) OnDelete(obj any) {
	if f.FilterFunc(obj) {
		f.Handler.OnDelete(obj)
	}
}

// Registration is a handle on an added handler.
type Registration interface {
	// HasSynced says whether the handler has been called for every object
	// of the informer's initial list (or, for a handler added later, of the
	// cache when it was added).
	HasSynced() bool
}

type notificationKind int

const (
	addNotification notificationKind = iota
	updateNotification
	deleteNotification
	syncedMarker
)

type notification struct {
	kind          notificationKind
	oldObj, obj   any
	inInitialList bool
}

// listener delivers notifications to one handler from its own unbounded
// buffer, so a slow handler blocks neither the informer nor other handlers.
type listener struct {
	handler ResourceEventHandler

	mu      sync.Mutex
	pending []notification
	wake    chan struct{} // capacity 1

	removed     chan struct{} // closed when the handler is removed
	removedOnce sync.Once

	synced atomic.Bool
}

func newListener(h ResourceEventHandler) *listener {
	return &listener{handler: h, wake: make(chan struct{}, 1), removed: make(chan struct{})}
}

func (l *listener) remove() { l.removedOnce.Do(func() { close(l.removed) }) }

func (l *listener) HasSynced() bool { return l.synced.Load() }

func (l *listener) add(n notification) {
	l.mu.Lock()
	l.pending = append(l.pending, n)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// run delivers notifications until stop is closed or the handler is
// removed.
func (l *listener) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-l.removed:
			return
		case <-l.wake:
		}
		for {
			l.mu.Lock()
			batch := l.pending
			l.pending = nil
			l.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i, n := range batch {
				select {
				case <-stop:
					return
				case <-l.removed:
					return
				default:
				}
				batch[i] = notification{} // release objects as we go
				switch n.kind {
				case addNotification:
					l.handler.OnAdd(n.obj, n.inInitialList)
				case updateNotification:
					l.handler.OnUpdate(n.oldObj, n.obj)
				case deleteNotification:
					l.handler.OnDelete(n.obj)
				case syncedMarker:
					l.synced.Store(true)
				}
			}
		}
	}
}

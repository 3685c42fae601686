package cacher

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/watch"
)

// watcherBuffer is how many events a watcher may fall behind before it is
// closed (its client re-watches from its last resourceVersion).
const watcherBuffer = 4096

// Watcher is one watch on the cache.
type Watcher struct {
	id        int
	c         *Cacher
	pred      Predicate
	bookmarks bool
	initial   []*Event
	// minRev: only events after it are delivered from the channel.
	minRev    int64
	ch        chan *Event
	done      chan struct{}
	closeOnce sync.Once
}

func (w *Watcher) push(e *Event) bool {
	select {
	case w.ch <- e:
		return true
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *Watcher) close() { w.closeOnce.Do(func() { close(w.done) }) }

// Stop ends the watch and unregisters it.
func (w *Watcher) Stop() {
	w.c.mu.Lock()
	delete(w.c.watchers, w.id)
	w.close()
	w.c.mu.Unlock()
}

// WatchOptions say where a watch starts.
type WatchOptions struct {
	// Rev: deliver changes after this revision. Ignored with Initial.
	Rev int64
	// Initial: first the current matching state as ADDED events, then
	// changes (the semantics of resourceVersion "" and "0").
	Initial bool
	// InitialEndBookmark: after the initial events, a bookmark marking their
	// end (sendInitialEvents).
	InitialEndBookmark bool
	// Consistent: the initial state is at least etcd's current revision.
	ConsistentRev int64
	Bookmarks     bool
	Pred          Predicate
}

// Watch opens a watch. A revision older than the window gets 410 Gone.
func (c *Cacher) Watch(ctx context.Context, o WatchOptions) (*Watcher, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.waitFor(ctx, o.ConsistentRev); err != nil {
		return nil, err
	}
	if !o.Initial {
		if err := c.waitFor(ctx, 0); err != nil {
			return nil, err
		}
	}
	w := &Watcher{c: c, pred: o.Pred, bookmarks: o.Bookmarks, ch: make(chan *Event, watcherBuffer), done: make(chan struct{})}
	if o.Initial {
		prefix := c.scanPrefix(o.Pred.Namespace)
		c.items.AscendGreaterOrEqual(&Entry{Key: prefix}, func(e *Entry) bool {
			if len(e.Key) < len(prefix) || e.Key[:len(prefix)] != prefix {
				return false
			}
			if o.Pred.Matches(e) {
				w.initial = append(w.initial, &Event{Type: watch.Added, Rev: e.Rev, Cur: e})
			}
			return true
		})
		if o.InitialEndBookmark {
			w.initial = append(w.initial, &Event{Type: watch.Bookmark, Rev: c.rev, Cur: &Entry{Key: initialEventsEnd}})
		}
		w.minRev = c.rev
	} else {
		if o.Rev < c.windowStart {
			return nil, GoneError(o.Rev, c.windowStart+1)
		}
		for i := 0; i < c.count; i++ {
			e := c.window[(c.head+i)%len(c.window)]
			if e.Rev > o.Rev {
				w.initial = append(w.initial, e)
			}
		}
		w.minRev = o.Rev
		if c.rev > w.minRev {
			w.minRev = c.rev
		}
	}
	c.nextWatch++
	w.id = c.nextWatch
	c.watchers[w.id] = w
	return w, nil
}

// initialEventsEnd marks the bookmark that ends the initial events.
const initialEventsEnd = "\x00initial-events-end"

// IsInitialEventsEnd reports whether a bookmark event ends the initial events.
func IsInitialEventsEnd(e *Event) bool {
	return e.Type == watch.Bookmark && e.Cur != nil && e.Cur.Key == initialEventsEnd
}

// Next returns the next event as the watcher's client sees it (filtered by
// its predicate, ADDED/DELETED when an object enters or leaves the
// selection). ok is false when the watch has ended (ctx done, cacher reset,
// or the watcher fell too far behind).
func (w *Watcher) Next(ctx context.Context) (typ watch.EventType, e *Entry, rev int64, ok bool) {
	return w.next(ctx, true)
}

// TryNext is Next without waiting: ok is false when no event is ready now
// (or the watch has ended, which the next Next reports).
func (w *Watcher) TryNext() (typ watch.EventType, e *Entry, rev int64, ok bool) {
	return w.next(context.Background(), false)
}

func (w *Watcher) next(ctx context.Context, wait bool) (typ watch.EventType, e *Entry, rev int64, ok bool) {
	for {
		var ev *Event
		if len(w.initial) > 0 {
			ev, w.initial = w.initial[0], w.initial[1:]
			if IsInitialEventsEnd(ev) {
				return watch.Bookmark, ev.Cur, ev.Rev, true
			}
		} else {
			if !wait {
				select {
				case ev = <-w.ch:
				default:
					return "", nil, 0, false
				}
			} else {
				select {
				case <-ctx.Done():
					return "", nil, 0, false
				case <-w.done:
					// Drain what was queued before the close.
					select {
					case ev = <-w.ch:
					default:
						return "", nil, 0, false
					}
				case ev = <-w.ch:
				}
			}
			if ev.Rev <= w.minRev && ev.Type != watch.Bookmark {
				continue
			}
		}
		if t, cur, ok := w.translate(ev); ok {
			return t, cur, ev.Rev, true
		}
	}
}

func (w *Watcher) translate(ev *Event) (watch.EventType, *Entry, bool) {
	switch ev.Type {
	case watch.Bookmark:
		if !w.bookmarks {
			return "", nil, false
		}
		return watch.Bookmark, nil, true
	case watch.Added:
		return watch.Added, ev.Cur, w.pred.Matches(ev.Cur)
	case watch.Deleted:
		return watch.Deleted, ev.Cur, w.pred.Matches(ev.Prev)
	}
	cur, prev := w.pred.Matches(ev.Cur), w.pred.Matches(ev.Prev)
	switch {
	case cur && prev:
		return watch.Modified, ev.Cur, true
	case cur:
		return watch.Added, ev.Cur, true
	case prev:
		return watch.Deleted, ev.Cur, true
	}
	return "", nil, false
}

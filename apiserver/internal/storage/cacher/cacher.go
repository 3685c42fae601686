// Package cacher is the watch cache: one etcd watch per resource feeds an
// in-memory, key-sorted copy of every object and a window of recent events.
// Lists and watches are served from it; a consistent list first waits until
// the cache has caught up with etcd's current revision.
package cacher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
	"github.com/coxswain/coxswain/pkg/api/scheme"
)

// AttrFunc returns the labels and selectable fields of an object.
type AttrFunc func(obj runtime.Object) (labels.Set, fields.Set, error)

// Entry is one cached object: its encoding (resourceVersion set), made once
// and shared by every list and watcher, and the attributes selectors match.
// The cache keeps no decoded object: Object decodes on demand.
type Entry struct {
	Key string
	// Obj is set only on entries read from etcd outside the cache.
	Obj    runtime.Object
	Raw    []byte
	Rev    int64
	Labels labels.Set
	Fields fields.Set

	// memo holds encodings derived from Raw (a watch event message per
	// event type), built once and shared by every watcher.
	memo [4]atomic.Pointer[[]byte]
}

// Object returns the entry's object, decoded from Raw when the entry does
// not hold one. The caller owns the result.
func (e *Entry) Object() (runtime.Object, error) {
	if e.Obj != nil {
		return e.Obj.DeepCopyObject(), nil
	}
	obj, _, err := scheme.Protobuf.Decode(e.Raw, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode cached %s: %w", e.Key, err)
	}
	return obj, nil
}

// MemoSlots is the number of slots Memo offers.
const MemoSlots = 4

// Memo returns the bytes in slot i, building them once.
func (e *Entry) Memo(i int, build func() []byte) []byte {
	if p := e.memo[i].Load(); p != nil {
		return *p
	}
	b := build()
	e.memo[i].Store(&b)
	return b
}

// Event is a change in the window.
type Event struct {
	Type watch.EventType
	Rev  int64
	Cur  *Entry // the new state; for DELETED the last state, at the delete revision
	Prev *Entry // the state before, nil for ADDED
}

// Config configures a cacher.
type Config struct {
	Resource schema.GroupResource
	GVK      schema.GroupVersionKind
	// Prefix of the resource's keys, ending in "/".
	Prefix string
	Store  *etcd.Store
	Attrs  AttrFunc
	// WindowSize is the number of recent events kept for watches.
	WindowSize int
	// ProgressInterval is how often etcd is asked for a progress
	// notification (which becomes a bookmark).
	ProgressInterval time.Duration
	Logger           *zap.Logger
}

// Cacher caches one resource.
type Cacher struct {
	cfg    Config
	logger *zap.Logger

	mu     sync.RWMutex
	cond   *sync.Cond // signalled whenever rev advances or the cacher resets
	items  *btree.BTreeG[*Entry]
	labels labelIndex
	rev    int64 // the revision the cache reflects
	ready  bool

	// window is a ring of the latest events; windowStart is the oldest
	// revision a watch may start from (events after it are all held).
	window      []*Event
	head, count int
	windowStart int64

	watchers  map[int]*Watcher
	nextWatch int

	watcher clientv3.Watcher
	cancel  context.CancelFunc
	done    chan struct{}

	hintMu sync.Mutex
	hints  map[string]hint

	// snapshots of the cache for paginated lists, by revision (guarded by
	// mu).
	snapshots map[int64]snapshot
}

// hint carries the attributes of an object this apiserver has just
// written, so the watch event of that write needs no decoding.
type hint struct {
	rev    int64
	labels labels.Set
	fields fields.Set
}

// maxHints bounds the hints waiting for their events.
const maxHints = 16384

// Hint records the attributes of the object written at key and revision
// rev by this process.
func (c *Cacher) Hint(key string, rev int64, lbls labels.Set, flds fields.Set) {
	c.hintMu.Lock()
	defer c.hintMu.Unlock()
	if c.hints == nil || len(c.hints) >= maxHints {
		c.hints = make(map[string]hint)
	}
	c.hints[key] = hint{rev: rev, labels: lbls, fields: flds}
}

func (c *Cacher) takeHint(key string, rev int64) (hint, bool) {
	c.hintMu.Lock()
	defer c.hintMu.Unlock()
	h, ok := c.hints[key]
	if ok {
		delete(c.hints, key)
	}
	return h, ok && h.rev == rev
}

// New returns a cacher; Run starts it.
func New(cfg Config) *Cacher {
	if cfg.WindowSize <= 0 {
		cfg.WindowSize = 10000
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	c := &Cacher{
		cfg:      cfg,
		logger:   cfg.Logger.Named("cacher").With(zap.String("resource", cfg.Resource.String())),
		items:    btree.NewG(32, func(a, b *Entry) bool { return a.Key < b.Key }),
		labels:   labelIndex{},
		window:   make([]*Event, cfg.WindowSize),
		watchers: map[int]*Watcher{},
		done:     make(chan struct{}),
	}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Start runs the cacher until ctx is cancelled or Stop is called.
func (c *Cacher) Start(ctx context.Context) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.watcher = clientv3.NewWatcher(c.cfg.Store.Client())
	go func() {
		defer close(c.done)
		defer c.watcher.Close()
		c.run(ctx)
	}()
}

// Stop stops the cacher and ends every watcher.
func (c *Cacher) Stop() {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.mu.Lock()
	c.ready = false
	for id, w := range c.watchers {
		w.close()
		delete(c.watchers, id)
	}
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Ready reports whether the cache holds a complete state.
func (c *Cacher) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.ready
}

// Revision returns the revision the cache reflects.
func (c *Cacher) Revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

func (c *Cacher) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.listAndWatch(ctx)
		if ctx.Err() != nil {
			return
		}
		c.logger.Warn("watch cache restarting", zap.Error(err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

func (c *Cacher) decode(key string, raw []byte, rev int64) (*Entry, error) {
	obj, err := etcd.Decode(raw, rev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(c.cfg.GVK)
	// The bytes lists and watches send: the stored ones with the
	// resourceVersion patched in, made once per change.
	withRV, err := etcd.WithResourceVersion(raw, rev)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	lbls, flds, err := c.cfg.Attrs(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: attributes: %w", key, err)
	}
	return &Entry{Key: key, Raw: withRV, Rev: rev, Labels: lbls, Fields: compactFields(flds)}, nil
}

func labelsEqual(a, b labels.Set) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// compactFields drops empty values: a missing field reads as "", so
// selectors match the same, and most objects leave most fields empty.
func compactFields(f fields.Set) fields.Set {
	for k, v := range f {
		if v == "" {
			delete(f, k)
		}
	}
	return f
}

// at returns a copy of e as of revision rev (a deleted object is reported
// at the delete's revision).
func at(e *Entry, stored []byte, rev int64) (*Entry, error) {
	raw, err := etcd.WithResourceVersion(stored, rev)
	if err != nil {
		return nil, err
	}
	return &Entry{Key: e.Key, Raw: raw, Rev: rev, Labels: e.Labels, Fields: e.Fields}, nil
}

func (c *Cacher) listAndWatch(ctx context.Context) error {
	// List everything at one revision.
	var (
		start = c.cfg.Prefix
		rev   int64
		tree  = btree.NewG(32, func(a, b *Entry) bool { return a.Key < b.Key })
	)
	for {
		kvs, r, more, err := c.cfg.Store.ListPage(ctx, c.cfg.Prefix, start, rev, 1000)
		if err != nil {
			return fmt.Errorf("initial list: %w", err)
		}
		rev = r
		for _, kv := range kvs {
			e, err := c.decode(kv.Key, kv.Value, kv.ModRevision)
			if err != nil {
				c.logger.Error("skipping undecodable object", zap.String("key", kv.Key), zap.Error(err))
				continue
			}
			tree.ReplaceOrInsert(e)
		}
		if !more || len(kvs) == 0 {
			break
		}
		start = kvs[len(kvs)-1].Key + "\x00"
	}

	c.mu.Lock()
	// Watchers of the previous incarnation may have missed events: end them
	// so they re-watch (and get 410 if their revision is gone).
	for id, w := range c.watchers {
		w.close()
		delete(c.watchers, id)
	}
	c.items = tree
	c.snapshots = nil
	c.hintMu.Lock()
	c.hints = nil
	c.hintMu.Unlock()
	c.labels = labelIndex{}
	tree.Ascend(func(e *Entry) bool { c.labels.add(e); return true })
	c.rev = rev
	c.head, c.count = 0, 0
	for i := range c.window {
		c.window[i] = nil
	}
	c.windowStart = rev
	c.ready = true
	c.cond.Broadcast()
	c.mu.Unlock()
	c.logger.Debug("watch cache listed", zap.Int64("revision", rev), zap.Int("objects", tree.Len()))

	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := c.watcher.Watch(wctx, c.cfg.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithPrevKV(), clientv3.WithProgressNotify())
	ticker := time.NewTicker(c.cfg.ProgressInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
			if err := c.watcher.RequestProgress(wctx); err != nil && ctx.Err() == nil {
				c.logger.Debug("progress request failed", zap.Error(err))
			}
		case resp, ok := <-wch:
			if !ok {
				return errors.New("etcd watch channel closed")
			}
			if err := resp.Err(); err != nil {
				c.markNotReady()
				return fmt.Errorf("etcd watch: %w", err)
			}
			if resp.IsProgressNotify() {
				c.progress(resp.Header.Revision)
				continue
			}
			for _, ev := range resp.Events {
				if err := c.apply(ev); err != nil {
					c.logger.Error("skipping undecodable event", zap.ByteString("key", ev.Kv.Key), zap.Error(err))
				}
			}
			if resp.Header.Revision > 0 {
				c.progressQuiet(resp.Header.Revision)
			}
		}
	}
}

func (c *Cacher) markNotReady() {
	c.mu.Lock()
	c.ready = false
	c.mu.Unlock()
}

// progress moves the cache's revision on without an event and sends
// bookmarks.
func (c *Cacher) progress(rev int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.rev {
		return
	}
	c.rev = rev
	c.cond.Broadcast()
	for _, w := range c.watchers {
		if w.bookmarks {
			w.push(&Event{Type: watch.Bookmark, Rev: rev})
		}
	}
}

func (c *Cacher) progressQuiet(rev int64) {
	c.mu.Lock()
	if rev > c.rev {
		c.rev = rev
		c.cond.Broadcast()
	}
	c.mu.Unlock()
}

// prevEntry returns the entry of the previous value: the cached one when it
// is that revision, else decoded.
func (c *Cacher) prevEntry(key string, kv *mvccpb.KeyValue) (*Entry, error) {
	c.mu.RLock()
	e, ok := c.items.Get(&Entry{Key: key})
	c.mu.RUnlock()
	if ok && e.Rev == kv.ModRevision {
		return e, nil
	}
	return c.decode(key, kv.Value, kv.ModRevision)
}

// current returns the entry of a new value: from this process's hint when
// it wrote it, else decoded.
func (c *Cacher) current(key string, kv *mvccpb.KeyValue) (*Entry, error) {
	if h, ok := c.takeHint(key, kv.ModRevision); ok {
		raw, err := etcd.WithResourceVersion(kv.Value, kv.ModRevision)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return &Entry{Key: key, Raw: raw, Rev: kv.ModRevision, Labels: h.labels, Fields: compactFields(h.fields)}, nil
	}
	return c.decode(key, kv.Value, kv.ModRevision)
}

func (c *Cacher) apply(ev *clientv3.Event) error {
	key := string(ev.Kv.Key)
	rev := ev.Kv.ModRevision
	var e Event
	e.Rev = rev
	switch {
	case ev.Type == clientv3.EventTypeDelete:
		if ev.PrevKv == nil {
			return errors.New("delete event without previous value")
		}
		prev, err := c.prevEntry(key, ev.PrevKv)
		if err != nil {
			return err
		}
		last, err := at(prev, ev.PrevKv.Value, rev)
		if err != nil {
			return err
		}
		e.Type, e.Cur, e.Prev = watch.Deleted, last, prev
	default:
		cur, err := c.current(key, ev.Kv)
		if err != nil {
			return err
		}
		e.Cur = cur
		e.Type = watch.Added
		if ev.PrevKv != nil {
			prev, err := c.prevEntry(key, ev.PrevKv)
			if err != nil {
				return err
			}
			e.Type, e.Prev = watch.Modified, prev
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var old *Entry
	var had bool
	if e.Type == watch.Deleted {
		old, had = c.items.Delete(&Entry{Key: key})
	} else {
		old, had = c.items.ReplaceOrInsert(e.Cur)
		c.labels.add(e.Cur)
	}
	if had && (e.Type == watch.Deleted || !labelsEqual(old.Labels, e.Cur.Labels)) {
		c.labels.remove(old)
		if e.Type != watch.Deleted {
			c.labels.add(e.Cur)
		}
	}
	// Append to the ring, evicting the oldest.
	idx := (c.head + c.count) % len(c.window)
	if c.count == len(c.window) {
		evicted := c.window[c.head]
		c.windowStart = evicted.Rev
		c.head = (c.head + 1) % len(c.window)
		c.count--
		idx = (c.head + c.count) % len(c.window)
	}
	c.window[idx] = &e
	c.count++
	if rev > c.rev {
		c.rev = rev
	}
	c.cond.Broadcast()
	for id, w := range c.watchers {
		if !w.push(&e) {
			c.logger.Debug("watcher too slow, closing", zap.Int("watcher", id))
			w.close()
			delete(c.watchers, id)
		}
	}
	return nil
}

// waitFor blocks until the cache reflects rev, or fails after 3 s as
// upstream does ("Too large resource version"). c.mu must be held; it is
// released while waiting.
func (c *Cacher) waitFor(ctx context.Context, rev int64) error {
	if c.ready && c.rev >= rev {
		return nil
	}
	deadline := time.Now().Add(3 * time.Second)
	// While waiting, ask etcd for progress notifications: the resource may
	// be idle while others moved the revision on. Each answer (or the
	// ticker itself) wakes the loop below.
	stop := make(chan struct{})
	defer close(stop)
	w := c.watcher
	go func() {
		t := time.NewTicker(25 * time.Millisecond)
		defer t.Stop()
		for {
			if w != nil {
				pctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), time.Second)
				_ = w.RequestProgress(pctx)
				cancel()
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
			case <-t.C:
			}
			c.mu.Lock()
			c.cond.Broadcast()
			c.mu.Unlock()
			if ctx.Err() != nil {
				return
			}
		}
	}()
	for !c.ready || c.rev < rev {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			if !c.ready {
				return apierrors.NewServiceUnavailable(fmt.Sprintf("the watch cache of %s is not ready", c.cfg.Resource))
			}
			return tooLarge(rev, c.rev)
		}
		c.cond.Wait()
	}
	return nil
}

func tooLarge(want, have int64) error {
	err := apierrors.NewTimeoutError(fmt.Sprintf("Too large resource version: %d, current: %d", want, have), 1)
	err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: "ResourceVersionTooLarge", Message: "Too large resource version"}}
	return err
}

// Predicate selects objects.
type Predicate struct {
	Label labels.Selector
	Field fields.Selector
	// Namespace limits to one namespace ("" for all).
	Namespace string
}

// Matches reports whether an entry satisfies p.
func (p Predicate) Matches(e *Entry) bool {
	if e == nil {
		return false
	}
	if p.Namespace != "" && e.Fields["metadata.namespace"] != p.Namespace {
		return false
	}
	if p.Label != nil && !p.Label.Empty() && !p.Label.Matches(e.Labels) {
		return false
	}
	if p.Field != nil && !p.Field.Empty() && !p.Field.Matches(e.Fields) {
		return false
	}
	return true
}

func (c *Cacher) scanPrefix(ns string) string {
	if ns == "" {
		return c.cfg.Prefix
	}
	return c.cfg.Prefix + ns + "/"
}

// List returns matching entries in key order, waiting first until the cache
// reflects minRev (0: no wait). It returns the cache revision served.
func (c *Cacher) List(ctx context.Context, minRev int64, p Predicate) ([]*Entry, int64, error) {
	c.mu.Lock()
	if err := c.waitFor(ctx, minRev); err != nil {
		c.mu.Unlock()
		return nil, 0, err
	}
	c.mu.Unlock()
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*Entry
	prefix := c.scanPrefix(p.Namespace)
	if name, ok := p.fieldName(); ok && p.Namespace != "" {
		if e, found := c.items.Get(&Entry{Key: prefix + name}); found && p.Matches(e) {
			out = append(out, e)
		}
		return out, c.rev, nil
	}
	if keys, ok := c.labels.candidates(p.Label); ok {
		for _, k := range keys {
			if len(k) < len(prefix) || k[:len(prefix)] != prefix {
				continue
			}
			if e, found := c.items.Get(&Entry{Key: k}); found && p.Matches(e) {
				out = append(out, e)
			}
		}
		return out, c.rev, nil
	}
	c.items.AscendGreaterOrEqual(&Entry{Key: prefix}, func(e *Entry) bool {
		if len(e.Key) < len(prefix) || e.Key[:len(prefix)] != prefix {
			return false
		}
		if p.Matches(e) {
			out = append(out, e)
		}
		return true
	})
	return out, c.rev, nil
}

func (p Predicate) fieldName() (string, bool) {
	if p.Field == nil {
		return "", false
	}
	return p.Field.RequiresExactMatch("metadata.name")
}

// Get returns the cached entry of key after the cache reflects minRev.
func (c *Cacher) Get(ctx context.Context, key string, minRev int64) (*Entry, bool, error) {
	// Fast path: fresh enough already, so readers share the lock.
	c.mu.RLock()
	if c.ready && c.rev >= minRev {
		e, ok := c.items.Get(&Entry{Key: key})
		c.mu.RUnlock()
		return e, ok, nil
	}
	c.mu.RUnlock()
	c.mu.Lock()
	if err := c.waitFor(ctx, minRev); err != nil {
		c.mu.Unlock()
		return nil, false, err
	}
	e, ok := c.items.Get(&Entry{Key: key})
	c.mu.Unlock()
	return e, ok, nil
}

// Count returns the number of cached objects.
func (c *Cacher) Count() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.items.Len()
}

// GoneError is the 410 a watch from outside the window gets.
func GoneError(rv, oldest int64) error {
	return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, oldest))
}

package informer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// ReflectorStore receives what a Reflector sees: the full state on every
// (re)list, then the watch events.
type ReflectorStore interface {
	Add(obj runtime.Object) error
	Update(obj runtime.Object) error
	Delete(obj runtime.Object) error
	// Replace is called with the complete, consistent list and its
	// resourceVersion.
	Replace(objs []runtime.Object, resourceVersion string) error
}

// Reflector defaults.
const (
	DefaultPageSize          = 500
	defaultInitialBackoff    = 800 * time.Millisecond
	defaultMaxBackoff        = 30 * time.Second
	defaultBackoffReset      = 2 * time.Minute
	defaultMinWatchTimeout   = 5 * time.Minute
	minHealthyWatchDuration  = time.Second
	defaultBackoffJitterFrac = 1.0
)

// Reflector keeps a ReflectorStore in step with the apiserver: it lists
// (paginated, consistent), replaces the store, then watches from the list's
// resourceVersion with bookmarks. A closed stream is re-watched from the last
// resourceVersion seen; 410 Gone or an expired resourceVersion relists;
// other failures relist after a jittered, capped exponential back-off.
type Reflector struct {
	name         string
	lw           ListerWatcher
	store        ReflectorStore
	expectedType reflect.Type
	logger       *zap.Logger

	pageSize     int64
	backoff      *backoff
	watchTimeout time.Duration // random in [watchTimeout, 2*watchTimeout)

	mu     sync.RWMutex
	lastRV string
}

// NewReflector returns a reflector feeding store from lw. exampleObj, if not
// nil, is the type of object expected; others are logged and skipped. A nil
// logger logs nothing.
func NewReflector(name string, lw ListerWatcher, exampleObj runtime.Object, store ReflectorStore, logger *zap.Logger) *Reflector {
	if logger == nil {
		logger = zap.NewNop()
	}
	r := &Reflector{
		name:         name,
		lw:           lw,
		store:        store,
		logger:       logger.Named("reflector").With(zap.String("reflector", name)),
		pageSize:     DefaultPageSize,
		backoff:      newBackoff(defaultInitialBackoff, defaultMaxBackoff, defaultBackoffReset, defaultBackoffJitterFrac),
		watchTimeout: defaultMinWatchTimeout,
	}
	if exampleObj != nil {
		r.expectedType = reflect.TypeOf(exampleObj)
	}
	return r
}

// LastSyncResourceVersion is the resourceVersion of the last list, event or
// bookmark seen.
func (r *Reflector) LastSyncResourceVersion() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.lastRV
}

func (r *Reflector) setLastRV(rv string) {
	if rv == "" {
		return
	}
	r.mu.Lock()
	r.lastRV = rv
	r.mu.Unlock()
}

// Run lists and watches until ctx is done.
func (r *Reflector) Run(ctx context.Context) {
	r.logger.Debug("starting reflector")
	defer r.logger.Debug("stopped reflector")
	for {
		err := r.listAndWatch(ctx)
		if ctx.Err() != nil {
			return
		}
		if isExpired(err) {
			r.logger.Info("resourceVersion expired, relisting", zap.Error(err))
		} else {
			r.logger.Warn("list and watch failed", zap.Error(err))
		}
		if !r.backoff.wait(ctx) {
			return
		}
	}
}

// listAndWatch lists once, then watches until a relist is needed; the error
// says why.
func (r *Reflector) listAndWatch(ctx context.Context) error {
	if err := r.list(ctx); err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		timeout := int64((r.watchTimeout + time.Duration(rand.Float64()*float64(r.watchTimeout))).Seconds())
		opts := metav1.ListOptions{
			ResourceVersion:     r.LastSyncResourceVersion(),
			AllowWatchBookmarks: true,
			TimeoutSeconds:      &timeout,
		}
		w, err := r.lw.Watch(ctx, opts)
		if err != nil {
			return fmt.Errorf("watch from resourceVersion %q: %w", opts.ResourceVersion, err)
		}
		start := time.Now()
		events, err := r.handleWatch(ctx, w)
		w.Stop()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case isExpired(err):
			return err
		case err != nil:
			// The stream broke: re-watch from the last resourceVersion after
			// a pause; if that watch fails too, relist.
			r.logger.Warn("watch stream failed, re-watching", zap.String("resourceVersion", r.LastSyncResourceVersion()), zap.Error(err))
			if !r.backoff.wait(ctx) {
				return ctx.Err()
			}
		case events == 0 && time.Since(start) < minHealthyWatchDuration:
			// An immediately closed, empty stream: do not spin.
			r.logger.Debug("watch closed at once, re-watching after back-off")
			if !r.backoff.wait(ctx) {
				return ctx.Err()
			}
		default:
			r.logger.Debug("watch closed, re-watching", zap.String("resourceVersion", r.LastSyncResourceVersion()), zap.Int("events", events))
		}
	}
}

// list reads the full state page by page and replaces the store.
func (r *Reflector) list(ctx context.Context) error {
	var (
		items []runtime.Object
		rv    string
		opts  = metav1.ListOptions{ResourceVersion: "", Limit: r.pageSize}
	)
	for {
		list, err := r.lw.List(ctx, opts)
		if err != nil {
			if opts.Continue != "" && isExpired(err) {
				// The snapshot of the continue token is gone: list again
				// in one request.
				r.logger.Info("list continuation expired, listing without pagination")
				items, opts = nil, metav1.ListOptions{ResourceVersion: ""}
				continue
			}
			return err
		}
		lm, err := meta.ListAccessor(list)
		if err != nil {
			return fmt.Errorf("list %T: %w", list, err)
		}
		page, err := meta.ExtractList(list)
		if err != nil {
			return fmt.Errorf("extract list %T: %w", list, err)
		}
		items = append(items, page...)
		rv = lm.GetResourceVersion()
		if lm.GetContinue() == "" {
			break
		}
		opts.Continue = lm.GetContinue()
	}
	if r.expectedType != nil {
		kept := items[:0]
		for _, obj := range items {
			if reflect.TypeOf(obj) != r.expectedType {
				r.logger.Error("listed object of unexpected type", zap.String("type", fmt.Sprintf("%T", obj)))
				continue
			}
			kept = append(kept, obj)
		}
		items = kept
	}
	if err := r.store.Replace(items, rv); err != nil {
		return fmt.Errorf("replace store: %w", err)
	}
	r.setLastRV(rv)
	r.logger.Debug("listed", zap.Int("items", len(items)), zap.String("resourceVersion", rv))
	return nil
}

// handleWatch applies the events of w to the store until the stream ends.
// It returns the number of events and the stream's error, if any.
func (r *Reflector) handleWatch(ctx context.Context, w watch.Interface) (int, error) {
	n := 0
	for {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case ev, ok := <-w.ResultChan():
			if !ok {
				return n, nil
			}
			n++
			if ev.Type == watch.Error {
				return n, apierrors.FromObject(ev.Object)
			}
			if r.expectedType != nil && reflect.TypeOf(ev.Object) != r.expectedType {
				r.logger.Error("watch event of unexpected type", zap.String("type", fmt.Sprintf("%T", ev.Object)))
				continue
			}
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				r.logger.Error("watch event object has no meta", zap.Error(err))
				continue
			}
			switch ev.Type {
			case watch.Added:
				err = r.store.Add(ev.Object)
			case watch.Modified:
				err = r.store.Update(ev.Object)
			case watch.Deleted:
				err = r.store.Delete(ev.Object)
			case watch.Bookmark:
			default:
				r.logger.Error("unknown watch event type", zap.String("type", string(ev.Type)))
			}
			if err != nil {
				r.logger.Error("store update failed", zap.String("event", string(ev.Type)), zap.Error(err))
			}
			r.setLastRV(m.GetResourceVersion())
		}
	}
}

// isExpired says whether err means the resourceVersion is too old to watch
// or continue from.
func isExpired(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
		return true
	}
	var se apierrors.APIStatus
	return errors.As(err, &se) && se.Status().Code == http.StatusGone
}

// backoff is a jittered, capped exponential back-off that resets after a
// quiet period without failures.
type backoff struct {
	initial, max, resetAfter time.Duration
	jitter                   float64

	mu          sync.Mutex
	current     time.Duration
	lastFailure time.Time
}

func newBackoff(initial, max, resetAfter time.Duration, jitter float64) *backoff {
	return &backoff{initial: initial, max: max, resetAfter: resetAfter, jitter: jitter}
}

// next returns the next delay and doubles the base for the following one.
func (b *backoff) next(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.current == 0 || now.Sub(b.lastFailure) > b.resetAfter {
		b.current = b.initial
	}
	b.lastFailure = now
	d := b.current
	b.current = min(2*b.current, b.max)
	if b.jitter > 0 {
		d += time.Duration(rand.Float64() * b.jitter * float64(d))
	}
	return min(d, b.max)
}

// wait sleeps the next delay; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := time.NewTimer(b.next(time.Now()))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

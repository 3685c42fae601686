// Package events records core/v1 Events about API objects, as upstream's
// client-go event recorder does: Eventf never blocks its caller (events go
// through a bounded buffer to one writer goroutine and are dropped when it
// is full), and the writer correlates them first: identical events raise
// the count of one Event, similar ones are combined past a threshold, and a
// token bucket per source and object bounds the new Events written.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/client"
)

// BufferSize is how many events may wait to be written.
const BufferSize = 1000

// maxBatch bounds how many queued events the writer correlates before it
// writes; repeats of one Event within a batch cost one write.
const maxBatch = 256

// writeTimeout bounds one write to the apiserver.
const writeTimeout = 10 * time.Second

// Recorder records Events as one source (component and host). Recorders
// derived with WithComponent share its buffer and writer.
type Recorder struct {
	w         *writer
	component string
	host      string
}

// writer is the buffer and the state of the one goroutine that writes.
type writer struct {
	events  *client.Typed[*corev1.Event]
	logger  *zap.Logger
	ch      chan *corev1.Event
	now     func() time.Time
	corr    *correlator
	running atomic.Bool
}

// NewRecorder returns a recorder reporting as component from host (empty
// for none, as upstream's controllers). Nothing is written until Run runs.
func NewRecorder(c *client.Client, component, host string, logger *zap.Logger) *Recorder {
	if logger == nil {
		logger = zap.NewNop()
	}
	w := &writer{
		events: client.For[*corev1.Event](c),
		logger: logger,
		ch:     make(chan *corev1.Event, BufferSize),
		now:    time.Now,
	}
	w.corr = newCorrelator(func() time.Time { return w.now() })
	return &Recorder{w: w, component: component, host: host}
}

// WithComponent returns a recorder reporting as component from the same
// host, sharing r's buffer and writer (r's Run writes its events).
func (r *Recorder) WithComponent(component string) *Recorder {
	if r == nil {
		return nil
	}
	return &Recorder{w: r.w, component: component, host: r.host}
}

// Eventf queues an event about obj: eventType is corev1.EventTypeNormal or
// EventTypeWarning, reason a short CamelCase word, action what was done
// (may be empty, for a plain core/v1 event without eventTime), and the
// message is format and args. It never blocks: when the buffer is full the
// event is dropped. Events about cluster-scoped objects go to namespace
// "default", as upstream's.
func (r *Recorder) Eventf(obj runtime.Object, eventType, reason, action, format string, args ...any) {
	if r == nil {
		return
	}
	ref, err := reference(obj)
	if err != nil {
		r.w.logger.Debug("cannot refer to object; dropping event", zap.String("reason", reason), zap.Error(err))
		return
	}
	now := r.w.now()
	ns := ref.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	instance := r.component
	if r.host != "" {
		instance = r.component + "-" + r.host
	}
	ev := &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", ref.Name, now.UnixNano()), Namespace: ns},
		InvolvedObject:      ref,
		Reason:              reason,
		Message:             fmt.Sprintf(format, args...),
		Source:              corev1.EventSource{Component: r.component, Host: r.host},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		Count:               1,
		Type:                eventType,
		Action:              action,
		ReportingController: r.component,
		ReportingInstance:   instance,
	}
	if action != "" {
		// An eventTime makes it an events.k8s.io-style event, which
		// requires an action.
		ev.EventTime = metav1.NewMicroTime(now)
	}
	select {
	case r.w.ch <- ev:
	default:
		r.w.logger.Debug("event buffer full, dropping event", zap.String("reason", reason),
			zap.String("kind", ref.Kind), zap.String("object", ref.Namespace+"/"+ref.Name))
	}
}

// reference builds the involvedObject of obj from its metadata, and its
// kind from its TypeMeta or, when that is empty, from the scheme.
func reference(obj runtime.Object) (corev1.ObjectReference, error) {
	if obj == nil {
		return corev1.ObjectReference{}, fmt.Errorf("nil object")
	}
	if ref, ok := obj.(*corev1.ObjectReference); ok {
		return *ref, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return corev1.ObjectReference{}, fmt.Errorf("object metadata of %T: %w", obj, err)
	}
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind == "" {
		gvks, _, err := scheme.Scheme.ObjectKinds(obj)
		if err != nil {
			return corev1.ObjectReference{}, fmt.Errorf("kind of %T: %w", obj, err)
		}
		gvk = gvks[0]
	}
	return corev1.ObjectReference{
		Kind:            gvk.Kind,
		APIVersion:      gvk.GroupVersion().String(),
		Namespace:       m.GetNamespace(),
		Name:            m.GetName(),
		UID:             m.GetUID(),
		ResourceVersion: m.GetResourceVersion(),
	}, nil
}

// Run writes queued events until ctx is done. It is the one writer of r
// and of the recorders derived from it: a second Run while one runs
// writes nothing and only waits for its ctx.
func (r *Recorder) Run(ctx context.Context) {
	if r == nil {
		<-ctx.Done()
		return
	}
	w := r.w
	if !w.running.CompareAndSwap(false, true) {
		w.logger.Error("event recorder is already running; not starting a second writer")
		<-ctx.Done()
		return
	}
	defer w.running.Store(false)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-w.ch:
			w.writeBatch(ctx, w.batch(ev))
		}
	}
}

// batch returns first and the events queued behind it, up to maxBatch.
func (w *writer) batch(first *corev1.Event) []*corev1.Event {
	evs := []*corev1.Event{first}
	for len(evs) < maxBatch {
		select {
		case ev := <-w.ch:
			evs = append(evs, ev)
		default:
			return evs
		}
	}
	return evs
}

// writeBatch correlates evs in order and writes the final state of each
// Event object they touch, once.
func (w *writer) writeBatch(ctx context.Context, evs []*corev1.Event) {
	var order []string
	final := map[string]correlation{}
	for _, ev := range evs {
		c, ok := w.corr.correlate(ev)
		if !ok {
			w.logger.Debug("too many events about object; dropping event", zap.String("reason", ev.Reason),
				zap.String("kind", ev.InvolvedObject.Kind), zap.String("object", ev.InvolvedObject.Namespace+"/"+ev.InvolvedObject.Name))
			continue
		}
		if prev, seen := final[c.key]; seen {
			// Not yet written: create it at its latest count.
			c.existing = prev.existing
		} else {
			order = append(order, c.key)
		}
		final[c.key] = c
	}
	for _, key := range order {
		if ctx.Err() != nil {
			return
		}
		w.write(ctx, final[key])
	}
}

// countPatch is the merge patch that records another occurrence.
type countPatch struct {
	Count         int32       `json:"count"`
	LastTimestamp metav1.Time `json:"lastTimestamp"`
	Message       string      `json:"message"`
}

// write updates the Event of an existing correlation, or creates it when
// it is new or the stored one is gone.
func (w *writer) write(ctx context.Context, c correlation) {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	ev := c.event
	logger := w.logger.With(zap.String("event", ev.Namespace+"/"+ev.Name), zap.String("reason", ev.Reason))
	if c.existing {
		patch, err := json.Marshal(countPatch{Count: ev.Count, LastTimestamp: ev.LastTimestamp, Message: ev.Message})
		if err != nil {
			logger.Error("cannot encode event patch", zap.Error(err))
			return
		}
		_, err = w.events.Patch(wctx, ev.Namespace, ev.Name, types.MergePatchType, patch)
		if err == nil {
			return
		}
		if !apierrors.IsNotFound(err) {
			w.logFailure(ctx, logger, "update", err)
			return
		}
		// Deleted (or never written): write it again, with the count.
	}
	cp := ev.DeepCopy()
	cp.ResourceVersion = ""
	if _, err := w.events.Create(wctx, cp.Namespace, cp); err != nil {
		w.logFailure(ctx, logger, "create", err)
	}
}

// logFailure logs a failed write, unless ctx (the writer's, not the
// write's) is done: then the recorder is shutting down.
func (w *writer) logFailure(ctx context.Context, logger *zap.Logger, op string, err error) {
	if ctx.Err() != nil {
		return
	}
	if apierrors.IsAlreadyExists(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		logger.Debug("event not written", zap.String("op", op), zap.Error(err))
		return
	}
	logger.Warn("failed to write event", zap.String("op", op), zap.Error(err))
}

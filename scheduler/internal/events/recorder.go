// Package events records core/v1 Events about pods, as upstream's event
// recorder does, without blocking the caller: events go through a bounded
// buffer to one writer goroutine, and are dropped when it is full.
package events

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
)

// BufferSize is how many events may wait to be written.
const BufferSize = 1000

// Recorder writes Events.
type Recorder struct {
	events    *client.Typed[*corev1.Event]
	component string
	host      string
	logger    *zap.Logger
	ch        chan *corev1.Event
}

// NewRecorder returns a recorder reporting as component (the scheduler
// name) from host.
func NewRecorder(c *client.Client, component, host string, logger *zap.Logger) *Recorder {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Recorder{events: client.For[*corev1.Event](c), component: component, host: host, logger: logger, ch: make(chan *corev1.Event, BufferSize)}
}

// Eventf queues an event about pod.
func (r *Recorder) Eventf(pod *corev1.Pod, eventType, reason, action, format string, args ...any) {
	if r == nil {
		return
	}
	now := time.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", pod.Name, now.UnixNano()), Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
		},
		Reason:              reason,
		Message:             fmt.Sprintf(format, args...),
		Source:              corev1.EventSource{Component: r.component, Host: r.host},
		FirstTimestamp:      metav1.NewTime(now),
		LastTimestamp:       metav1.NewTime(now),
		EventTime:           metav1.NewMicroTime(now),
		Count:               1,
		Type:                eventType,
		Action:              action,
		ReportingController: r.component,
		ReportingInstance:   r.component + "-" + r.host,
	}
	select {
	case r.ch <- ev:
	default:
		r.logger.Debug("event buffer full, dropping event", zap.String("reason", reason), zap.String("pod", pod.Namespace+"/"+pod.Name))
	}
}

// Run writes queued events until ctx is done.
func (r *Recorder) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.ch:
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if _, err := r.events.Create(wctx, ev.Namespace, ev); err != nil && ctx.Err() == nil {
				r.logger.Debug("failed to write event", zap.String("reason", ev.Reason), zap.Error(err))
			}
			cancel()
		}
	}
}

package controller

import (
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
)

// Upstream's event reasons for the pods a controller creates and deletes.
const (
	SuccessfulCreatePodReason = "SuccessfulCreate"
	FailedCreatePodReason     = "FailedCreate"
	SuccessfulDeletePodReason = "SuccessfulDelete"
	FailedDeletePodReason     = "FailedDelete"
)

// EventRecorder records Events about objects; pkg/events' Recorder is the
// real one. Eventf must not block.
type EventRecorder interface {
	Eventf(obj runtime.Object, eventType, reason, action, format string, args ...any)
}

// NopRecorder records nothing.
type NopRecorder struct{}

// Eventf does nothing.
func (NopRecorder) Eventf(runtime.Object, string, string, string, string, ...any) {}

// RecordedEvent is an event a FakeRecorder saw.
type RecordedEvent struct {
	Object  runtime.Object
	Type    string
	Reason  string
	Message string
}

// FakeRecorder keeps the events, for tests.
type FakeRecorder struct {
	mu     sync.Mutex
	events []RecordedEvent
}

// Eventf records the event.
func (f *FakeRecorder) Eventf(obj runtime.Object, eventType, reason, _, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, RecordedEvent{Object: obj, Type: eventType, Reason: reason, Message: fmt.Sprintf(format, args...)})
}

// Events returns the recorded events, oldest first.
func (f *FakeRecorder) Events() []RecordedEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]RecordedEvent(nil), f.events...)
}

package queue

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newQueue() (*Queue, *fakeClock) {
	c := &fakeClock{now: time.Unix(1_000_000, 0)}
	return New(Options{Clock: c, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second}), c
}

// popNow pops an active pod or fails: the queue must not block here.
func popNow(t *testing.T, q *Queue) *QueuedPodInfo {
	t.Helper()
	if a, _, _ := q.Lens(); a == 0 {
		t.Fatal("active queue is empty")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := q.Pop(ctx)
	if p == nil {
		t.Fatal("Pop() returned nil")
	}
	return p
}

func TestActiveOrder(t *testing.T) {
	q, _ := newQueue()
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	q.Add(fixture.Pod("young-low").Created(t1).Obj())
	q.Add(fixture.Pod("old-low").Created(t0).Obj())
	q.Add(fixture.Pod("young-high").Created(t1).Priority(100).Obj())
	q.Add(fixture.Pod("old-high").Created(t0).Priority(100).Obj())
	q.Add(fixture.Pod("same-time-later").Created(t1).Obj())
	var got []string
	for range 5 {
		got = append(got, popNow(t, q).Pod.Name)
	}
	want := []string{"old-high", "young-high", "old-low", "young-low", "same-time-later"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pop order (-want +got):\n%s", diff)
	}
}

func TestPopBlocksUntilAddOrCancel(t *testing.T) {
	q, _ := newQueue()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if p := q.Pop(ctx); p != nil {
		t.Fatalf("Pop() on a cancelled context = %v, want nil", p.Pod.Name)
	}
	done := make(chan *QueuedPodInfo)
	go func() { done <- q.Pop(context.Background()) }()
	q.Add(fixture.Pod("p").Obj())
	select {
	case p := <-done:
		if p.Pod.Name != "p" {
			t.Errorf("popped %s, want p", p.Pod.Name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Pop() did not return after Add")
	}
}

func TestBackoffDoublesToMax(t *testing.T) {
	q, _ := newQueue()
	var got []time.Duration
	for attempts := 1; attempts <= 6; attempts++ {
		got = append(got, q.BackoffDuration(attempts))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoffs (-want +got):\n%s", diff)
	}
}

func TestErrorBacksOff(t *testing.T) {
	q, clock := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	for attempt, wait := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		p := popNow(t, q)
		q.AddUnschedulableIfNotPresent(p, false, q.SchedulingCycle())
		if where := q.Has(pod); where != "backoff" {
			t.Fatalf("attempt %d: pod in %q, want backoff", attempt+1, where)
		}
		clock.Step(wait - time.Millisecond)
		q.FlushBackoffQCompleted()
		if where := q.Has(pod); where != "backoff" {
			t.Fatalf("attempt %d: pod in %q just before its %v back-off ends, want backoff", attempt+1, where, wait)
		}
		clock.Step(time.Millisecond)
		q.FlushBackoffQCompleted()
		if where := q.Has(pod); where != "active" {
			t.Fatalf("attempt %d: pod in %q after its %v back-off, want active", attempt+1, where, wait)
		}
	}
}

func TestUnschedulableMovedOnEvent(t *testing.T) {
	q, clock := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	p := popNow(t, q)
	q.AddUnschedulableIfNotPresent(p, true, q.SchedulingCycle())
	if where := q.Has(pod); where != "unschedulable" {
		t.Fatalf("pod in %q, want unschedulable", where)
	}
	// Back-off has not expired yet: the move goes to backoff.
	q.MoveAllToActiveOrBackoffQueue()
	if where := q.Has(pod); where != "backoff" {
		t.Fatalf("pod in %q after a move within its back-off, want backoff", where)
	}
	clock.Step(time.Second)
	q.FlushBackoffQCompleted()
	p = popNow(t, q)
	q.AddUnschedulableIfNotPresent(p, true, q.SchedulingCycle())
	clock.Step(3 * time.Second) // past the 2 s back-off
	q.MoveAllToActiveOrBackoffQueue()
	if where := q.Has(pod); where != "active" {
		t.Fatalf("pod in %q after a move past its back-off, want active", where)
	}
}

func TestMoveDuringAttemptAvoidsParking(t *testing.T) {
	q, _ := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	p := popNow(t, q)
	cycle := q.SchedulingCycle()
	q.MoveAllToActiveOrBackoffQueue() // e.g. a node was added while the pod was being scheduled
	q.AddUnschedulableIfNotPresent(p, true, cycle)
	if where := q.Has(pod); where != "backoff" {
		t.Fatalf("pod in %q, want backoff: it may have missed the event", where)
	}
}

func TestUnschedulableLeftover(t *testing.T) {
	q, clock := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	q.AddUnschedulableIfNotPresent(popNow(t, q), true, q.SchedulingCycle())
	clock.Step(MaxInUnschedulable)
	q.FlushUnschedulableLeftover()
	if where := q.Has(pod); where != "unschedulable" {
		t.Fatalf("pod in %q at exactly the limit, want unschedulable", where)
	}
	clock.Step(time.Second)
	q.FlushUnschedulableLeftover()
	if where := q.Has(pod); where != "active" {
		t.Fatalf("pod in %q after the limit, want active", where)
	}
}

func TestUpdate(t *testing.T) {
	q, clock := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	q.AddUnschedulableIfNotPresent(popNow(t, q), true, q.SchedulingCycle())
	clock.Step(time.Minute)

	statusOnly := pod.DeepCopy()
	statusOnly.ResourceVersion = "2"
	statusOnly.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	q.Update(pod, statusOnly)
	if where := q.Has(pod); where != "unschedulable" {
		t.Fatalf("pod in %q after a status-only update, want unschedulable", where)
	}
	relabelled := statusOnly.DeepCopy()
	relabelled.Labels = map[string]string{"a": "b"}
	q.Update(statusOnly, relabelled)
	if where := q.Has(pod); where != "active" {
		t.Fatalf("pod in %q after a spec/metadata update, want active", where)
	}
	if got := popNow(t, q).Pod.Labels["a"]; got != "b" {
		t.Errorf("popped pod label a=%q, want the updated pod", got)
	}
	q.Delete(pod)
	if where := q.Has(pod); where != "" {
		t.Errorf("pod in %q after Delete", where)
	}
}

func TestAddUnschedulableIfNotPresentKeepsQueued(t *testing.T) {
	q, _ := newQueue()
	pod := fixture.Pod("p").Obj()
	q.Add(pod)
	p := popNow(t, q)
	q.Add(pod) // an update arrived while the pod was being scheduled
	q.AddUnschedulableIfNotPresent(p, true, q.SchedulingCycle())
	if where := q.Has(pod); where != "active" {
		t.Fatalf("pod in %q, want it to stay active", where)
	}
}

// Package queue is the scheduling queue: pods waiting to be scheduled in an
// active heap (higher priority, then older, first), pods backing off after
// a failed attempt (1 s doubling to 10 s by default), and pods found
// unschedulable, parked until a cluster event that could help them.
package queue

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

// Clock is the queue's time source; tests inject a fake one.
type Clock interface {
	Now() time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Upstream's periods.
const (
	// BackoffFlushPeriod is how often expired back-offs move to active.
	BackoffFlushPeriod = time.Second
	// UnschedulableFlushPeriod is how often long-parked pods are retried.
	UnschedulableFlushPeriod = 30 * time.Second
	// MaxInUnschedulable is how long a pod stays parked with no event.
	MaxInUnschedulable = 5 * time.Minute
)

// QueuedPodInfo is a pod in the queue.
type QueuedPodInfo struct {
	Pod *corev1.Pod
	// Timestamp is when the pod last entered the queue.
	Timestamp time.Time
	// InitialAttemptTimestamp is when it was first popped.
	InitialAttemptTimestamp time.Time
	// Attempts counts the scheduling attempts.
	Attempts int

	key           string
	seq           uint64
	backoffExpiry time.Time
}

// Key is namespace/name.
func (p *QueuedPodInfo) Key() string { return p.key }

// PodKey returns a pod's queue key.
func PodKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

func priority(p *corev1.Pod) int32 {
	if p.Spec.Priority != nil {
		return *p.Spec.Priority
	}
	return 0
}

// activeLess orders by priority (higher first), then creation time, then
// arrival in the queue.
func activeLess(a, b *QueuedPodInfo) bool {
	pa, pb := priority(a.Pod), priority(b.Pod)
	if pa != pb {
		return pa > pb
	}
	ta, tb := a.Pod.CreationTimestamp.Time, b.Pod.CreationTimestamp.Time
	if !ta.Equal(tb) {
		return ta.Before(tb)
	}
	return a.seq < b.seq
}

func backoffLess(a, b *QueuedPodInfo) bool {
	if !a.backoffExpiry.Equal(b.backoffExpiry) {
		return a.backoffExpiry.Before(b.backoffExpiry)
	}
	return a.seq < b.seq
}

// Options configure a queue.
type Options struct {
	Clock          Clock
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
}

// Queue is the scheduling queue. It is safe for concurrent use; Pop is
// meant for one consumer.
type Queue struct {
	clock          Clock
	initialBackoff time.Duration
	maxBackoff     time.Duration

	mu            sync.Mutex
	active        *keyedHeap
	backoff       *keyedHeap
	unschedulable map[string]*QueuedPodInfo
	seq           uint64
	// schedulingCycle counts pops; moveRequestCycle is the cycle at the
	// last move of unschedulable pods, so a pod whose attempt began
	// before a move is not parked (it might have missed the event).
	schedulingCycle  int64
	moveRequestCycle int64
	wake             chan struct{}
}

// New returns an empty queue.
func New(o Options) *Queue {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.InitialBackoff <= 0 {
		o.InitialBackoff = time.Second
	}
	if o.MaxBackoff < o.InitialBackoff {
		o.MaxBackoff = max(10*time.Second, o.InitialBackoff)
	}
	return &Queue{
		clock: o.Clock, initialBackoff: o.InitialBackoff, maxBackoff: o.MaxBackoff,
		active: newKeyedHeap(activeLess), backoff: newKeyedHeap(backoffLess),
		unschedulable: map[string]*QueuedPodInfo{}, wake: make(chan struct{}, 1),
	}
}

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) newInfo(pod *corev1.Pod) *QueuedPodInfo {
	q.seq++
	return &QueuedPodInfo{Pod: pod, Timestamp: q.clock.Now(), key: PodKey(pod), seq: q.seq}
}

func (q *Queue) pushActive(p *QueuedPodInfo) {
	q.active.upsert(p)
	q.signal()
}

// Add queues a new pending pod as active.
func (q *Queue) Add(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := PodKey(pod)
	if p, ok := q.active.get(key); ok {
		p.Pod = pod
		q.active.upsert(p)
		return
	}
	p, ok := q.backoff.remove(key)
	if !ok {
		p, ok = q.unschedulable[key]
		delete(q.unschedulable, key)
	}
	if !ok {
		p = q.newInfo(pod)
	}
	p.Pod = pod
	q.pushActive(p)
}

// isPodUpdated says whether anything but status and bookkeeping metadata
// changed, i.e. whether the update may make the pod schedulable.
func isPodUpdated(oldPod, newPod *corev1.Pod) bool {
	strip := func(p *corev1.Pod) *corev1.Pod {
		c := p.DeepCopy()
		c.ResourceVersion = ""
		c.Generation = 0
		c.ManagedFields = nil
		c.Status = corev1.PodStatus{}
		return c
	}
	return !equality.Semantic.DeepEqual(strip(oldPod), strip(newPod))
}

// Update refreshes a queued pod. A parked pod whose spec or metadata
// changed is retried; a pod in no queue is added as active.
func (q *Queue) Update(oldPod, newPod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := PodKey(newPod)
	if p, ok := q.active.get(key); ok {
		p.Pod = newPod
		q.active.upsert(p)
		return
	}
	if p, ok := q.backoff.get(key); ok {
		p.Pod = newPod
		q.backoff.upsert(p)
		return
	}
	if p, ok := q.unschedulable[key]; ok {
		p.Pod = newPod
		if oldPod == nil || isPodUpdated(oldPod, newPod) {
			delete(q.unschedulable, key)
			q.requeueLocked(p)
		}
		return
	}
	if oldPod != nil && !isPodUpdated(oldPod, newPod) {
		// A status-only change of a pod being scheduled (our own
		// condition update, say): nothing to retry.
		return
	}
	q.pushActive(q.newInfo(newPod))
}

// Delete removes a pod from the queue.
func (q *Queue) Delete(pod *corev1.Pod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := PodKey(pod)
	q.active.remove(key)
	q.backoff.remove(key)
	delete(q.unschedulable, key)
}

// Pop returns the next active pod, blocking until there is one or ctx is
// done (nil).
func (q *Queue) Pop(ctx context.Context) *QueuedPodInfo {
	for {
		q.mu.Lock()
		if p := q.active.pop(); p != nil {
			q.schedulingCycle++
			p.Attempts++
			if p.InitialAttemptTimestamp.IsZero() {
				p.InitialAttemptTimestamp = q.clock.Now()
			}
			if q.active.Len() > 0 {
				q.signal()
			}
			q.mu.Unlock()
			return p
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		}
	}
}

// SchedulingCycle is the number of pops so far; pass the value read right
// after Pop to AddUnschedulableIfNotPresent.
func (q *Queue) SchedulingCycle() int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.schedulingCycle
}

// BackoffDuration is the back-off after attempts failed attempts:
// initial, doubled per further attempt, capped at max.
func (q *Queue) BackoffDuration(attempts int) time.Duration {
	d := q.initialBackoff
	for i := 1; i < attempts; i++ {
		if d > q.maxBackoff/2 {
			return q.maxBackoff
		}
		d *= 2
	}
	return min(d, q.maxBackoff)
}

// AddUnschedulableIfNotPresent requeues a pod after a failed attempt begun
// in podSchedulingCycle. An unschedulable pod is parked until an event
// could help it, unless such an event came during its attempt, in which
// case it backs off; a pod that failed with an error backs off.
func (q *Queue) AddUnschedulableIfNotPresent(p *QueuedPodInfo, unschedulable bool, podSchedulingCycle int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.active.get(p.key); ok {
		return
	}
	if _, ok := q.backoff.get(p.key); ok {
		return
	}
	if _, ok := q.unschedulable[p.key]; ok {
		return
	}
	now := q.clock.Now()
	p.Timestamp = now
	p.backoffExpiry = now.Add(q.BackoffDuration(p.Attempts))
	if !unschedulable || q.moveRequestCycle >= podSchedulingCycle {
		q.backoff.upsert(p)
		return
	}
	q.unschedulable[p.key] = p
}

// requeueLocked sends a parked pod to back-off if its back-off has not
// expired, else to active.
func (q *Queue) requeueLocked(p *QueuedPodInfo) {
	if q.clock.Now().Before(p.backoffExpiry) {
		q.backoff.upsert(p)
		return
	}
	q.pushActive(p)
}

// MoveAllToActiveOrBackoffQueue retries every parked pod: a cluster event
// (node added or changed, pod deleted) may have made room.
func (q *Queue) MoveAllToActiveOrBackoffQueue() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for key, p := range q.unschedulable {
		delete(q.unschedulable, key)
		q.requeueLocked(p)
	}
	q.moveRequestCycle = q.schedulingCycle
}

// FlushBackoffQCompleted moves pods whose back-off expired to active.
func (q *Queue) FlushBackoffQCompleted() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for {
		p := q.backoff.peek()
		if p == nil || p.backoffExpiry.After(now) {
			return
		}
		q.backoff.pop()
		q.pushActive(p)
	}
}

// FlushUnschedulableLeftover retries pods parked for longer than
// MaxInUnschedulable.
func (q *Queue) FlushUnschedulableLeftover() {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.clock.Now()
	for key, p := range q.unschedulable {
		if now.Sub(p.Timestamp) > MaxInUnschedulable {
			delete(q.unschedulable, key)
			q.requeueLocked(p)
		}
	}
}

// Run flushes the back-off and unschedulable pods periodically until ctx
// is done.
func (q *Queue) Run(ctx context.Context) {
	backoff := time.NewTicker(BackoffFlushPeriod)
	defer backoff.Stop()
	leftover := time.NewTicker(UnschedulableFlushPeriod)
	defer leftover.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-backoff.C:
			q.FlushBackoffQCompleted()
		case <-leftover.C:
			q.FlushUnschedulableLeftover()
		}
	}
}

// Lens returns the sizes of the active, back-off and unschedulable queues.
func (q *Queue) Lens() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// Has reports which queue holds the pod: "active", "backoff",
// "unschedulable" or "".
func (q *Queue) Has(pod *corev1.Pod) string {
	q.mu.Lock()
	defer q.mu.Unlock()
	key := PodKey(pod)
	if _, ok := q.active.get(key); ok {
		return "active"
	}
	if _, ok := q.backoff.get(key); ok {
		return "backoff"
	}
	if _, ok := q.unschedulable[key]; ok {
		return "unschedulable"
	}
	return ""
}

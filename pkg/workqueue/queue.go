// Package workqueue is a rate-limited work queue of comparable keys, in the
// shape of client-go's: an item is handed to at most one worker at a time,
// duplicates collapse, failures are retried with back-off, and delayed adds
// wait in a heap served by one goroutine owned by the queue.
package workqueue

import (
	"container/heap"
	"sync"
	"time"
)

// Config configures a queue. The zero value is a queue with the default
// controller rate limiter, the wall clock and no metrics.
type Config[T comparable] struct {
	// Name labels the queue's metrics.
	Name string
	// RateLimiter paces AddRateLimited; nil is DefaultControllerRateLimiter.
	RateLimiter RateLimiter[T]
	// Clock is the time source; nil is the wall clock.
	Clock Clock
	// Metrics, when set with a Name, records the queue's depth, adds,
	// retries and work duration.
	Metrics *Metrics
}

// Typed is a rate-limited, delaying work queue of items T.
//
// A worker loop:
//
//	for {
//		key, shutdown := q.Get()
//		if shutdown {
//			return
//		}
//		err := reconcile(key)
//		if err == nil {
//			q.Forget(key)
//		} else {
//			q.AddRateLimited(key)
//		}
//		q.Done(key)
//	}
type Typed[T comparable] struct {
	cond *sync.Cond // guards the fields below
	// queue is the FIFO of items ready for a worker; every item in it is
	// also in dirty.
	queue []T
	// dirty holds the items that need processing.
	dirty map[T]struct{}
	// processing holds the items handed to a worker, with the time.
	processing   map[T]time.Time
	shuttingDown bool
	drain        bool

	limiter RateLimiter[T]
	clock   Clock
	metrics queueMetrics

	// Delayed adds, served by the waitLoop goroutine.
	waitMu   sync.Mutex
	waiting  waitHeap[T]
	waitIdx  map[T]*waitEntry[T]
	nudge    chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	loopDone chan struct{}
}

// New returns a queue with the default rate limiter and no metrics.
func New[T comparable]() *Typed[T] { return NewWithConfig(Config[T]{}) }

// NewWithConfig returns a queue configured by cfg. It starts the queue's
// delay goroutine; ShutDown stops it.
func NewWithConfig[T comparable](cfg Config[T]) *Typed[T] {
	if cfg.RateLimiter == nil {
		cfg.RateLimiter = DefaultControllerRateLimiter[T]()
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	q := &Typed[T]{
		cond:       sync.NewCond(&sync.Mutex{}),
		dirty:      map[T]struct{}{},
		processing: map[T]time.Time{},
		limiter:    cfg.RateLimiter,
		clock:      cfg.Clock,
		metrics:    cfg.Metrics.forQueue(cfg.Name),
		waitIdx:    map[T]*waitEntry[T]{},
		nudge:      make(chan struct{}, 1),
		stop:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	go q.waitLoop()
	return q
}

// Add marks item as needing processing. An item already waiting is not added
// twice; an item being processed is queued again once its worker calls Done.
func (q *Typed[T]) Add(item T) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	if q.shuttingDown {
		return
	}
	if _, ok := q.dirty[item]; ok {
		return
	}
	q.dirty[item] = struct{}{}
	q.metrics.add()
	if _, ok := q.processing[item]; ok {
		return
	}
	q.queue = append(q.queue, item)
	q.cond.Signal()
}

// Len is the number of items ready for a worker.
func (q *Typed[T]) Len() int {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	return len(q.queue)
}

// Get blocks until an item is ready and hands it to the caller, who must call
// Done with it. shutdown is true when the queue is shut down and empty.
// Items already queued are still handed out after ShutDown.
func (q *Typed[T]) Get() (item T, shutdown bool) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	for len(q.queue) == 0 && !q.shuttingDown {
		q.cond.Wait()
	}
	if len(q.queue) == 0 {
		return item, true
	}
	item = q.queue[0]
	var zero T
	q.queue[0] = zero
	q.queue = q.queue[1:]
	if len(q.queue) == 0 {
		q.queue = nil // let the backing array go
	}
	q.metrics.get()
	q.processing[item] = q.clock.Now()
	delete(q.dirty, item)
	return item, false
}

// Done marks the end of item's processing. If item was added meanwhile, it
// is queued again.
func (q *Typed[T]) Done(item T) {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	start, ok := q.processing[item]
	if !ok {
		return
	}
	delete(q.processing, item)
	q.metrics.done(q.clock.Now().Sub(start))
	if _, ok := q.dirty[item]; ok {
		q.queue = append(q.queue, item)
		q.cond.Signal()
	} else if len(q.processing) == 0 {
		q.cond.Broadcast() // wake ShutDownWithDrain
	}
}

// ShutDown makes the queue ignore new items and wakes every Get; workers
// still receive the items already queued, then shutdown=true. It stops the
// delay goroutine, dropping items waiting in AddAfter.
func (q *Typed[T]) ShutDown() {
	q.cond.L.Lock()
	q.drain = false
	q.shuttingDown = true
	q.cond.Broadcast()
	q.cond.L.Unlock()
	q.stopWaitLoop()
}

// ShutDownWithDrain is ShutDown that then blocks until every item handed to
// a worker has been marked Done. A concurrent ShutDown ends the wait.
func (q *Typed[T]) ShutDownWithDrain() {
	q.cond.L.Lock()
	q.drain = true
	q.shuttingDown = true
	q.cond.Broadcast()
	for len(q.processing) > 0 && q.drain {
		q.cond.Wait()
	}
	q.cond.L.Unlock()
	q.stopWaitLoop()
}

// ShuttingDown says whether ShutDown has been called.
func (q *Typed[T]) ShuttingDown() bool {
	q.cond.L.Lock()
	defer q.cond.L.Unlock()
	return q.shuttingDown
}

// AddRateLimited adds item after the rate limiter's delay for it.
func (q *Typed[T]) AddRateLimited(item T) {
	q.metrics.retry()
	q.AddAfter(item, q.limiter.When(item))
}

// Forget clears item's retry history; call it when item was processed
// successfully.
func (q *Typed[T]) Forget(item T) { q.limiter.Forget(item) }

// NumRequeues is the number of times item was rate-limited since its last
// Forget.
func (q *Typed[T]) NumRequeues(item T) int { return q.limiter.NumRequeues(item) }

// AddAfter adds item once d has passed. An item already waiting keeps the
// earlier of its two ready times.
func (q *Typed[T]) AddAfter(item T, d time.Duration) {
	if q.ShuttingDown() {
		return
	}
	if d <= 0 {
		q.Add(item)
		return
	}
	readyAt := q.clock.Now().Add(d)
	q.waitMu.Lock()
	if e, ok := q.waitIdx[item]; ok {
		if readyAt.Before(e.readyAt) {
			e.readyAt = readyAt
			heap.Fix(&q.waiting, e.index)
		}
	} else {
		e := &waitEntry[T]{item: item, readyAt: readyAt}
		heap.Push(&q.waiting, e)
		q.waitIdx[item] = e
	}
	q.waitMu.Unlock()
	select {
	case q.nudge <- struct{}{}:
	default:
	}
}

func (q *Typed[T]) stopWaitLoop() {
	q.stopOnce.Do(func() { close(q.stop) })
	<-q.loopDone
}

// waitLoop moves waiting items into the queue when they are ready.
func (q *Typed[T]) waitLoop() {
	defer close(q.loopDone)
	for {
		now := q.clock.Now()
		var ready []T
		var next time.Duration = -1
		q.waitMu.Lock()
		for q.waiting.Len() > 0 {
			e := q.waiting[0]
			if e.readyAt.After(now) {
				next = e.readyAt.Sub(now)
				break
			}
			heap.Pop(&q.waiting)
			delete(q.waitIdx, e.item)
			ready = append(ready, e.item)
		}
		q.waitMu.Unlock()
		for _, item := range ready {
			q.Add(item)
		}

		var timerC <-chan time.Time
		var timer Timer
		if next >= 0 {
			timer = q.clock.NewTimer(next)
			timerC = timer.C()
		}
		select {
		case <-q.stop:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-q.nudge:
		case <-timerC:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

type waitEntry[T comparable] struct {
	item    T
	readyAt time.Time
	index   int
}

// waitHeap orders waiting items by ready time.
type waitHeap[T comparable] []*waitEntry[T]

func (h waitHeap[T]) Len() int           { return len(h) }
func (h waitHeap[T]) Less(i, j int) bool { return h[i].readyAt.Before(h[j].readyAt) }
func (h waitHeap[T]) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *waitHeap[T]) Push(x any) {
	e := x.(*waitEntry[T])
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *waitHeap[T]) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return e
}

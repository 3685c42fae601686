package workqueue

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// drainReady takes every ready item without blocking.
func drainReady[T comparable](q *Typed[T]) []T {
	var out []T
	for q.Len() > 0 {
		item, _ := q.Get()
		out = append(out, item)
		q.Done(item)
	}
	return out
}

func TestAddDedupAndOrder(t *testing.T) {
	tests := []struct {
		name string
		adds []string
		want []string
	}{
		{"empty", nil, nil},
		{"fifo", []string{"a", "b", "c"}, []string{"a", "b", "c"}},
		{"duplicates collapse", []string{"a", "b", "a", "a", "c", "b"}, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := New[string]()
			defer q.ShutDown()
			for _, a := range tt.adds {
				q.Add(a)
			}
			if got := q.Len(); got != len(tt.want) {
				t.Errorf("Len() = %d, want %d", got, len(tt.want))
			}
			if diff := cmp.Diff(tt.want, drainReady(q)); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProcessingWhileDirty(t *testing.T) {
	q := New[string]()
	defer q.ShutDown()
	q.Add("a")
	item, _ := q.Get()
	if item != "a" {
		t.Fatalf("Get() = %q, want a", item)
	}
	// Added while processing: not handed to another worker.
	q.Add("a")
	q.Add("a")
	if got := q.Len(); got != 0 {
		t.Fatalf("Len() while processing = %d, want 0", got)
	}
	q.Done("a")
	if got := q.Len(); got != 1 {
		t.Fatalf("Len() after Done = %d, want 1", got)
	}
	if diff := cmp.Diff([]string{"a"}, drainReady(q)); diff != "" {
		t.Errorf("items (-want +got):\n%s", diff)
	}
	// Done without a re-add leaves the queue empty.
	if got := q.Len(); got != 0 {
		t.Errorf("Len() = %d, want 0", got)
	}
}

func TestOneWorkerPerItem(t *testing.T) {
	q := New[int]()
	var (
		mu       sync.Mutex
		inFlight = map[int]bool{}
		counts   = map[int]int{}
		wg       sync.WaitGroup
	)
	errs := make(chan error, 100)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				item, shutdown := q.Get()
				if shutdown {
					return
				}
				mu.Lock()
				if inFlight[item] {
					errs <- fmt.Errorf("item %d processed by two workers", item)
				}
				inFlight[item] = true
				counts[item]++
				again := counts[item] < 5
				mu.Unlock()
				if again {
					q.Add(item) // re-added while processing
				}
				mu.Lock()
				inFlight[item] = false
				mu.Unlock()
				q.Done(item)
			}
		}()
	}
	for i := 0; i < 200; i++ {
		q.Add(i % 10)
	}
	eventually(t, "queue to empty", func() bool {
		q.cond.L.Lock()
		defer q.cond.L.Unlock()
		return len(q.queue) == 0 && len(q.processing) == 0
	})
	q.ShutDown()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestShutDown(t *testing.T) {
	q := New[string]()
	q.Add("a")
	q.Add("b")
	got := make(chan string, 1)
	item, _ := q.Get() // a is in flight
	q.ShutDown()
	if !q.ShuttingDown() {
		t.Errorf("ShuttingDown() = false after ShutDown")
	}
	q.Add("c") // ignored
	// Already queued items are still handed out.
	if it, shutdown := q.Get(); it != "b" || shutdown {
		t.Errorf("Get() = %q, %v, want b, false", it, shutdown)
	}
	q.Done("b")
	go func() {
		it, shutdown := q.Get()
		if shutdown {
			got <- "shutdown"
		} else {
			got <- it
		}
	}()
	select {
	case g := <-got:
		if g != "shutdown" {
			t.Errorf("Get() after drain = %q, want shutdown", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get() did not return after ShutDown")
	}
	q.Done(item)
}

func TestShutDownWithDrainWaitsForDone(t *testing.T) {
	q := New[string]()
	q.Add("a")
	item, _ := q.Get()
	drained := make(chan struct{})
	go func() {
		q.ShutDownWithDrain()
		close(drained)
	}()
	eventually(t, "shutdown to start", q.ShuttingDown)
	select {
	case <-drained:
		t.Fatal("ShutDownWithDrain returned while an item was processing")
	default:
	}
	q.Add("a") // ignored: shutting down
	q.Done(item)
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("ShutDownWithDrain did not return after Done")
	}
	if _, shutdown := q.Get(); !shutdown {
		t.Error("Get() after drain: shutdown = false, want true")
	}
}

// waitTimer waits until the delay loop is idle with its timer set to next.
func waitTimer[T comparable](t *testing.T, q *Typed[T], c *fakeClock, next time.Duration) {
	t.Helper()
	eventually(t, fmt.Sprintf("delay timer at %v", next), func() bool {
		d := c.liveDeadlines()
		return len(q.nudge) == 0 && len(d) == 1 && d[0] == next
	})
}

func TestAddAfterOrdering(t *testing.T) {
	c := newFakeClock()
	q := NewWithConfig(Config[string]{Clock: c})
	defer q.ShutDown()

	q.AddAfter("c", 30*time.Millisecond)
	q.AddAfter("a", 10*time.Millisecond)
	q.AddAfter("b", 20*time.Millisecond)
	q.AddAfter("a", 50*time.Millisecond) // keeps the earlier time
	q.AddAfter("now", 0)                 // immediate
	if diff := cmp.Diff([]string{"now"}, drainReady(q)); diff != "" {
		t.Fatalf("immediate items (-want +got):\n%s", diff)
	}

	var got []string
	for _, step := range []struct {
		next time.Duration
		want string
	}{{10 * time.Millisecond, "a"}, {10 * time.Millisecond, "b"}, {10 * time.Millisecond, "c"}} {
		waitTimer(t, q, c, step.next)
		c.Step(step.next)
		eventually(t, "item "+step.want, func() bool { return q.Len() == 1 })
		got = append(got, drainReady(q)...)
	}
	if diff := cmp.Diff([]string{"a", "b", "c"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if d := c.liveDeadlines(); len(d) != 0 {
		t.Errorf("timers left: %v", d)
	}
}

func TestShutDownStopsDelayLoop(t *testing.T) {
	c := newFakeClock()
	q := NewWithConfig(Config[string]{Clock: c})
	q.AddAfter("a", time.Hour)
	waitTimer(t, q, c, time.Hour)
	q.ShutDown() // returns only once the loop has exited
	select {
	case <-q.loopDone:
	default:
		t.Fatal("delay loop still running after ShutDown")
	}
	q.AddAfter("b", time.Second) // ignored, no panic
}

func TestItemExponentialFailureRateLimiter(t *testing.T) {
	r := NewItemExponentialFailureRateLimiter[string](5*time.Millisecond, time.Second)
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i, w := range want {
		if got := r.When("a"); got != w*time.Millisecond {
			t.Errorf("When #%d = %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if got := r.NumRequeues("a"); got != len(want) {
		t.Errorf("NumRequeues = %d, want %d", got, len(want))
	}
	if got := r.When("b"); got != 5*time.Millisecond {
		t.Errorf("When(b) = %v, want 5ms (independent items)", got)
	}
	r.Forget("a")
	if got := r.NumRequeues("a"); got != 0 {
		t.Errorf("NumRequeues after Forget = %d, want 0", got)
	}
	if got := r.When("a"); got != 5*time.Millisecond {
		t.Errorf("When after Forget = %v, want 5ms", got)
	}
	// No overflow after very many failures.
	big := NewItemExponentialFailureRateLimiter[int](time.Millisecond, 1000*time.Second)
	for i := 0; i < 200; i++ {
		if d := big.When(1); d <= 0 || d > 1000*time.Second {
			t.Fatalf("When #%d = %v, out of range", i, d)
		}
	}
}

func TestBucketAndMaxOfRateLimiter(t *testing.T) {
	c := newFakeClock()
	bucket := NewBucketRateLimiter[string](1, 2, c)
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, bucket.When("x"))
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bucket delays (-want +got):\n%s", diff)
	}
	c.Step(10 * time.Second) // refills to the burst
	maxOf := NewMaxOfRateLimiter[string](
		NewItemExponentialFailureRateLimiter[string](100*time.Millisecond, time.Hour),
		bucket,
	)
	got = nil
	for i := 0; i < 4; i++ {
		got = append(got, maxOf.When("y"))
	}
	want = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, time.Second, 2 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("max-of delays (-want +got):\n%s", diff)
	}
	if n := maxOf.NumRequeues("y"); n != 4 {
		t.Errorf("NumRequeues = %d, want 4", n)
	}
	maxOf.Forget("y")
	if n := maxOf.NumRequeues("y"); n != 0 {
		t.Errorf("NumRequeues after Forget = %d, want 0", n)
	}
}

func TestAddRateLimited(t *testing.T) {
	c := newFakeClock()
	q := NewWithConfig(Config[string]{
		Clock:       c,
		RateLimiter: NewItemExponentialFailureRateLimiter[string](time.Millisecond, time.Second),
	})
	defer q.ShutDown()
	for i, wait := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond} {
		q.AddRateLimited("a")
		if n := q.NumRequeues("a"); n != i+1 {
			t.Errorf("NumRequeues = %d, want %d", n, i+1)
		}
		waitTimer(t, q, c, wait)
		if q.Len() != 0 {
			t.Fatalf("item ready before its back-off")
		}
		c.Step(wait)
		eventually(t, "rate-limited item", func() bool { return q.Len() == 1 })
		drainReady(q)
	}
	q.Forget("a")
	if n := q.NumRequeues("a"); n != 0 {
		t.Errorf("NumRequeues after Forget = %d, want 0", n)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewMetrics(reg); err != nil {
		t.Fatalf("second NewMetrics on the same registry: %v", err)
	}
	q := NewWithConfig(Config[string]{Name: "test", Metrics: m})
	defer q.ShutDown()
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if got := testutil.ToFloat64(m.adds.WithLabelValues("test")); got != 2 {
		t.Errorf("adds = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.depth.WithLabelValues("test")); got != 2 {
		t.Errorf("depth = %v, want 2", got)
	}
	drainReady(q)
	if got := testutil.ToFloat64(m.depth.WithLabelValues("test")); got != 0 {
		t.Errorf("depth after drain = %v, want 0", got)
	}
	if got := testutil.CollectAndCount(m.duration); got != 1 {
		t.Errorf("work duration series = %d, want 1", got)
	}
}

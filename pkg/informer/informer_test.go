package informer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func storeKeys(inf SharedInformer) []string { return sorted(inf.GetStore().ListKeys()) }

func TestInitialListIsPaginatedAndWatchStartsAtListRV(t *testing.T) {
	s := newFakeServer()
	for i := 0; i < 1203; i++ {
		s.put(pod("ns", fmt.Sprintf("p%04d", i), nil), false)
	}
	rec := &recorder{}
	inf := startInformer(t, s, 0, rec.handler())
	eventually(t, "watch", func() bool { _, w, _ := s.counts(); return w == 1 })

	s.mu.Lock()
	var pages []string
	for _, l := range s.lists {
		pages = append(pages, fmt.Sprintf("limit=%d continue=%q rv=%q", l.Limit, l.Continue, l.ResourceVersion))
	}
	w := s.watches[0]
	s.mu.Unlock()
	wantPages := []string{`limit=500 continue="" rv=""`, `limit=500 continue="500" rv=""`, `limit=500 continue="1000" rv=""`}
	if diff := cmp.Diff(wantPages, pages); diff != "" {
		t.Errorf("list requests (-want +got):\n%s", diff)
	}
	if w.ResourceVersion != "1203" || !w.AllowWatchBookmarks {
		t.Errorf("watch options rv=%q bookmarks=%v, want rv=1203 bookmarks=true", w.ResourceVersion, w.AllowWatchBookmarks)
	}
	if n := len(inf.GetStore().List()); n != 1203 {
		t.Errorf("store has %d objects, want 1203", n)
	}
	eventually(t, "1203 adds", func() bool { return len(rec.get()) == 1203 })
	if got := inf.LastSyncResourceVersion(); got != "1203" {
		t.Errorf("LastSyncResourceVersion = %q, want 1203", got)
	}
}

func TestExpiredContinueFallsBackToFullList(t *testing.T) {
	s := newFakeServer()
	for i := 0; i < 600; i++ {
		s.put(pod("ns", fmt.Sprintf("p%04d", i), nil), false)
	}
	s.expireList = true
	inf := startInformer(t, s, 0)
	if n := len(inf.GetStore().List()); n != 600 {
		t.Errorf("store has %d objects, want 600", n)
	}
	s.mu.Lock()
	last := s.lists[len(s.lists)-1]
	s.mu.Unlock()
	if last.Limit != 0 || last.Continue != "" {
		t.Errorf("last list limit=%d continue=%q, want an unpaginated list", last.Limit, last.Continue)
	}
}

func TestWatchEventsAndHandlerOrdering(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	rec1, rec2 := &recorder{}, &recorder{}
	inf := startInformer(t, s, 0, rec1.handler(), rec2.handler())
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })

	s.put(pod("ns", "b", nil), true)
	s.put(pod("ns", "a", map[string]string{"x": "1"}), true)
	s.remove("ns", "b", true)
	s.put(pod("ns", "c", nil), true)
	want := []string{"add ns/a", "add ns/b", "update ns/a", "delete ns/b", "add ns/c"}
	for i, rec := range []*recorder{rec1, rec2} {
		eventually(t, "events", func() bool { return len(rec.get()) == len(want) })
		if diff := cmp.Diff(want, rec.get()); diff != "" {
			t.Errorf("handler %d events (-want +got):\n%s", i, diff)
		}
	}
	if diff := cmp.Diff([]string{"ns/a", "ns/c"}, storeKeys(inf)); diff != "" {
		t.Errorf("store keys (-want +got):\n%s", diff)
	}
}

func TestRelistOn410ProducesTombstonesAndNoDuplicateAdds(t *testing.T) {
	s := newFakeServer()
	for _, n := range []string{"a", "b", "c"} {
		s.put(pod("ns", n, nil), false)
	}
	rec := &recorder{}
	inf := startInformer(t, s, 0, rec.handler())
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })
	eventually(t, "initial adds", func() bool { return len(rec.get()) == 3 })
	rec.reset()

	// Changes the informer misses: b deleted, c changed, d created.
	s.remove("ns", "b", false)
	s.put(pod("ns", "c", map[string]string{"v": "2"}), false)
	s.put(pod("ns", "d", nil), false)
	s.expire()

	want := []string{"delete tombstone:ns/b", "add ns/d", "update ns/a", "update ns/c"}
	eventually(t, "relist events", func() bool { return len(rec.get()) == len(want) })
	if diff := cmp.Diff(sorted(want), sorted(rec.get())); diff != "" {
		t.Errorf("events after relist (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ns/a", "ns/c", "ns/d"}, storeKeys(inf)); diff != "" {
		t.Errorf("store keys (-want +got):\n%s", diff)
	}
	obj, _, _ := inf.GetStore().GetByKey("ns/c")
	if got := obj.(*corev1.Pod).Labels["v"]; got != "2" {
		t.Errorf("ns/c label v = %q, want 2", got)
	}
	eventually(t, "re-watch", func() bool { _, w, open := s.counts(); return w == 2 && open == 1 })
	lists, _, _ := s.counts()
	if lists != 2 {
		t.Errorf("list calls = %d, want 2", lists)
	}
	// The second watch starts at the relist's resourceVersion.
	if diff := cmp.Diff([]string{"3", "6"}, s.watchRVs()); diff != "" {
		t.Errorf("watch resourceVersions (-want +got):\n%s", diff)
	}
}

func TestTombstoneCarriesLastKnownState(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", map[string]string{"k": "v"}), false)
	var got DeletedFinalStateUnknown
	deleted := make(chan struct{})
	startInformer(t, s, 0, ResourceEventHandlerFuncs{DeleteFunc: func(obj any) {
		got = obj.(DeletedFinalStateUnknown)
		close(deleted)
	}})
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })
	s.remove("ns", "a", false)
	s.expire()
	select {
	case <-deleted:
	case <-time.After(10 * time.Second):
		t.Fatal("no delete")
	}
	if got.Key != "ns/a" || got.Obj.(*corev1.Pod).Labels["k"] != "v" {
		t.Errorf("tombstone = %+v, want key ns/a with the last state", got)
	}
	if key, err := KeyFunc(got); err != nil || key != "ns/a" {
		t.Errorf("KeyFunc(tombstone) = %q, %v, want ns/a", key, err)
	}
}

func TestClosedStreamResumesFromLastRV(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	rec := &recorder{}
	inf := startInformer(t, s, 0, rec.handler())
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })

	s.put(pod("ns", "b", nil), true) // rv 2
	bm := s.bookmark()               // rv 3
	eventually(t, "bookmark", func() bool { return inf.LastSyncResourceVersion() == bm })
	s.closeStreams()
	eventually(t, "re-watch", func() bool { _, w, open := s.counts(); return w == 2 && open == 1 })
	s.put(pod("ns", "c", nil), true) // rv 4, on the new stream
	eventually(t, "event on new stream", func() bool { return len(rec.get()) == 3 })

	if diff := cmp.Diff([]string{"1", "3"}, s.watchRVs()); diff != "" {
		t.Errorf("watch resourceVersions (-want +got):\n%s", diff)
	}
	if lists, _, _ := s.counts(); lists != 1 {
		t.Errorf("list calls = %d, want 1 (no relist)", lists)
	}
	if diff := cmp.Diff([]string{"add ns/a", "add ns/b", "add ns/c"}, rec.get()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestBrokenStreamRewatchesThenRelistsOnWatchError(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	startInformer(t, s, 0)
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })
	s.put(pod("ns", "b", nil), true) // rv 2

	// A 500 on the stream: re-watch from the last resourceVersion.
	s.fail()
	eventually(t, "re-watch", func() bool { _, w, open := s.counts(); return w == 2 && open == 1 })
	if lists, _, _ := s.counts(); lists != 1 {
		t.Errorf("list calls after stream error = %d, want 1", lists)
	}

	// The next watch call fails: relist.
	s.mu.Lock()
	s.watchErr = apierrors.NewServiceUnavailable("down")
	s.mu.Unlock()
	s.closeStreams()
	eventually(t, "relist and watch", func() bool { l, _, open := s.counts(); return l == 2 && open == 1 })
	if diff := cmp.Diff([]string{"1", "2", "2", "2"}, s.watchRVs()); diff != "" {
		t.Errorf("watch resourceVersions (-want +got):\n%s", diff)
	}
}

func TestSlowHandlerDoesNotBlockOthers(t *testing.T) {
	s := newFakeServer()
	slow := &recorder{block: make(chan struct{})}
	fast := &recorder{}
	inf := startInformer(t, s, 0, slow.handler(), fast.handler())
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })
	var want []string
	for i := 0; i < 50; i++ {
		s.put(pod("ns", fmt.Sprintf("p%02d", i), nil), true)
		want = append(want, fmt.Sprintf("add ns/p%02d", i))
	}
	eventually(t, "fast handler", func() bool { return len(fast.get()) == 50 })
	eventually(t, "store", func() bool { return len(inf.GetStore().List()) == 50 })
	if n := len(slow.get()); n != 0 {
		t.Fatalf("slow handler saw %d events while blocked", n)
	}
	close(slow.block)
	eventually(t, "slow handler", func() bool { return len(slow.get()) == 50 })
	if diff := cmp.Diff(want, slow.get()); diff != "" {
		t.Errorf("slow handler events (-want +got):\n%s", diff)
	}
}

func TestLateHandlerGetsCurrentContents(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	s.put(pod("ns", "b", nil), false)
	inf := startInformer(t, s, 0)
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })

	rec := &recorder{}
	var inInitial []bool
	reg, err := inf.AddEventHandler(FilteringResourceEventHandler{
		FilterFunc: func(any) bool { return true },
		Handler:    handlerWithInitial{rec: rec, initial: func(b bool) { inInitial = append(inInitial, b) }},
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "registration sync", reg.HasSynced)
	s.put(pod("ns", "c", nil), true)
	eventually(t, "events", func() bool { return len(rec.get()) == 3 })
	got := rec.get()
	if diff := cmp.Diff([]string{"add ns/a", "add ns/b"}, sorted(got[:2])); diff != "" {
		t.Errorf("synthetic adds (-want +got):\n%s", diff)
	}
	if got[2] != "add ns/c" {
		t.Errorf("third event = %q, want add ns/c", got[2])
	}
	if diff := cmp.Diff([]bool{true, true, false}, inInitial); diff != "" {
		t.Errorf("isInInitialList (-want +got):\n%s", diff)
	}

	if err := inf.RemoveEventHandler(reg); err != nil {
		t.Fatal(err)
	}
	if err := inf.RemoveEventHandler(reg); err == nil {
		t.Error("second RemoveEventHandler succeeded")
	}
}

type handlerWithInitial struct {
	rec     *recorder
	initial func(bool)
}

func (h handlerWithInitial) OnAdd(obj any, isInInitialList bool) {
	h.initial(isInInitialList)
	h.rec.record("add " + describe(obj))
}
func (h handlerWithInitial) OnUpdate(_, newObj any) { h.rec.record("update " + describe(newObj)) }
func (h handlerWithInitial) OnDelete(obj any)       { h.rec.record("delete " + describe(obj)) }

func TestResync(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	rec := &recorder{}
	startInformer(t, s, 5*time.Millisecond, rec.handler())
	eventually(t, "resync", func() bool {
		for _, e := range rec.get() {
			if e == "resync ns/a" {
				return true
			}
		}
		return false
	})
	if got := rec.get(); got[0] != "add ns/a" {
		t.Errorf("first event = %q, want add ns/a", got[0])
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	blocked := &recorder{block: make(chan struct{})}
	inf := NewSharedInformer(s, &corev1.Pod{}, time.Millisecond, nil)
	if _, err := inf.AddEventHandler(blocked.handler()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.Run(ctx)
	}()
	eventually(t, "sync", inf.HasSynced)
	eventually(t, "watch", func() bool { _, _, open := s.counts(); return open == 1 })
	cancel()
	close(blocked.block) // the handler returns; its goroutine then sees the stop
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if !inf.IsStopped() {
		t.Error("IsStopped() = false after Run returned")
	}
	if _, err := inf.AddEventHandler(ResourceEventHandlerFuncs{}); !errors.Is(err, errStopped) {
		t.Errorf("AddEventHandler after stop: err = %v, want %v", err, errStopped)
	}
	// A second Run returns at once.
	inf.Run(context.Background())
}

func TestRetriesFailedInitialList(t *testing.T) {
	fails := 2
	s := newFakeServer()
	s.put(pod("ns", "a", nil), false)
	lw := &ListWatch{
		ListFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			if fails > 0 {
				fails--
				return nil, apierrors.NewServiceUnavailable("not yet")
			}
			return s.List(ctx, opts)
		},
		WatchFunc: s.Watch,
	}
	inf := NewSharedInformer(lw, &corev1.Pod{}, 0, nil)
	fastBackoff(inf.(*sharedInformer).reflector)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go inf.Run(ctx)
	if !WaitForCacheSync(ctx, inf.HasSynced) {
		t.Fatal("not synced")
	}
	if diff := cmp.Diff([]string{"ns/a"}, storeKeys(inf)); diff != "" {
		t.Errorf("store keys (-want +got):\n%s", diff)
	}
}

func TestWaitForCacheSyncHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if WaitForCacheSync(ctx, func() bool { return true }, func() bool { return false }) {
		t.Error("WaitForCacheSync = true with an unsynced function")
	}
	if !WaitForCacheSync(context.Background(), func() bool { return true }) {
		t.Error("WaitForCacheSync = false with synced functions")
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoff(800*time.Millisecond, 30*time.Second, 2*time.Minute, 0)
	now := time.Unix(0, 0)
	var got []time.Duration
	for i := 0; i < 8; i++ {
		got = append(got, b.next(now))
		now = now.Add(time.Second)
	}
	want := []time.Duration{800 * time.Millisecond, 1600 * time.Millisecond, 3200 * time.Millisecond,
		6400 * time.Millisecond, 12800 * time.Millisecond, 25600 * time.Millisecond, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	if d := b.next(now.Add(3 * time.Minute)); d != 800*time.Millisecond {
		t.Errorf("delay after a healthy period = %v, want 800ms", d)
	}
	j := newBackoff(time.Second, 30*time.Second, time.Minute, 1.0)
	for i := 0; i < 20; i++ {
		if d := j.next(now); d < time.Second || d > 30*time.Second {
			t.Fatalf("jittered delay %v out of range", d)
		}
	}
}

func TestIsExpired(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{apierrors.NewResourceExpired("too old"), true},
		{apierrors.NewGone("gone"), true},
		{fmt.Errorf("watch: %w", apierrors.NewResourceExpired("too old")), true},
		{apierrors.NewInternalError(errors.New("x")), false},
		{errors.New("plain"), false},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.err != nil {
			name = strings.ReplaceAll(tt.err.Error(), " ", "_")
		}
		t.Run(name, func(t *testing.T) {
			if got := isExpired(tt.err); got != tt.want {
				t.Errorf("isExpired(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

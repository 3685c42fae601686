package informer

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// fakeServer is an in-memory ListerWatcher of pods whose watches the test
// drives: events, bookmarks, 410 errors and closed streams.
type fakeServer struct {
	mu         sync.Mutex
	rv         int
	pods       map[string]*corev1.Pod
	watchers   []*watch.RaceFreeFakeWatcher
	lists      []metav1.ListOptions
	watches    []metav1.ListOptions
	watchErr   error // returned by the next Watch call
	expireList bool  // the next continued List call fails with 410
}

func newFakeServer() *fakeServer { return &fakeServer{pods: map[string]*corev1.Pod{}} }

func pod(ns, name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
}

func (s *fakeServer) nextRV() string {
	s.rv++
	return strconv.Itoa(s.rv)
}

// put stores a copy of p with a new resourceVersion; notify sends the event.
func (s *fakeServer) put(p *corev1.Pod, notify bool) *corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	p = p.DeepCopy()
	p.ResourceVersion = s.nextRV()
	key := p.Namespace + "/" + p.Name
	_, exists := s.pods[key]
	s.pods[key] = p
	if notify {
		typ := watch.Added
		if exists {
			typ = watch.Modified
		}
		s.send(watch.Event{Type: typ, Object: p.DeepCopy()})
	}
	return p
}

func (s *fakeServer) remove(ns, name string, notify bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + name
	p := s.pods[key].DeepCopy()
	delete(s.pods, key)
	p.ResourceVersion = s.nextRV()
	if notify {
		s.send(watch.Event{Type: watch.Deleted, Object: p})
	}
}

func (s *fakeServer) bookmark() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rv := s.nextRV()
	s.send(watch.Event{Type: watch.Bookmark, Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv}}})
	return rv
}

// expire ends every open watch with a 410 Gone error event.
func (s *fakeServer) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := apierrors.NewResourceExpired("too old resource version").Status()
	s.send(watch.Event{Type: watch.Error, Object: &st})
	s.closeLocked()
}

// fail ends every open watch with a 500 error event.
func (s *fakeServer) fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := apierrors.NewInternalError(fmt.Errorf("boom")).Status()
	s.send(watch.Event{Type: watch.Error, Object: &st})
	s.closeLocked()
}

// closeStreams ends every open watch cleanly.
func (s *fakeServer) closeStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
}

func (s *fakeServer) closeLocked() {
	for _, w := range s.watchers {
		w.Stop()
	}
	s.watchers = nil
}

func (s *fakeServer) send(ev watch.Event) {
	for _, w := range s.watchers {
		w.Action(ev.Type, ev.Object)
	}
}

func (s *fakeServer) List(_ context.Context, opts metav1.ListOptions) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists = append(s.lists, opts)
	if opts.Continue != "" && s.expireList {
		s.expireList = false
		return nil, apierrors.NewResourceExpired("continue token expired")
	}
	keys := make([]string, 0, len(s.pods))
	for k := range s.pods {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	start := 0
	if opts.Continue != "" {
		start, _ = strconv.Atoi(opts.Continue)
	}
	end := len(keys)
	list := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(s.rv)}}
	if opts.Limit > 0 && start+int(opts.Limit) < end {
		end = start + int(opts.Limit)
		list.Continue = strconv.Itoa(end)
	}
	for _, k := range keys[start:end] {
		list.Items = append(list.Items, *s.pods[k].DeepCopy())
	}
	return list, nil
}

func (s *fakeServer) Watch(_ context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watches = append(s.watches, opts)
	if err := s.watchErr; err != nil {
		s.watchErr = nil
		return nil, err
	}
	w := watch.NewRaceFreeFake()
	s.watchers = append(s.watchers, w)
	return w, nil
}

func (s *fakeServer) counts() (lists, watches, open int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lists), len(s.watches), len(s.watchers)
}

func (s *fakeServer) watchRVs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, w := range s.watches {
		out = append(out, w.ResourceVersion)
	}
	return out
}

// recorder records handler calls as strings.
type recorder struct {
	mu     sync.Mutex
	events []string
	block  chan struct{} // if set, each call waits for it to be closed
}

func describe(obj any) string {
	switch o := obj.(type) {
	case *corev1.Pod:
		return o.Namespace + "/" + o.Name
	case DeletedFinalStateUnknown:
		return "tombstone:" + o.Key
	}
	return fmt.Sprintf("%T", obj)
}

func (r *recorder) record(s string) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	r.events = append(r.events, s)
	r.mu.Unlock()
}

func (r *recorder) handler() ResourceEventHandlerFuncs {
	return ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { r.record("add " + describe(obj)) },
		UpdateFunc: func(old, new any) {
			if old == new {
				r.record("resync " + describe(new))
				return
			}
			r.record("update " + describe(new))
		},
		DeleteFunc: func(obj any) { r.record("delete " + describe(obj)) },
	}
}

func (r *recorder) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fastBackoff makes a reflector retry at once in tests.
func fastBackoff(r *Reflector) {
	r.backoff = newBackoff(time.Millisecond, 5*time.Millisecond, time.Minute, 0)
}

// startInformer runs an informer over s until the test ends.
func startInformer(t *testing.T, s *fakeServer, resync time.Duration, handlers ...ResourceEventHandler) SharedInformer {
	t.Helper()
	inf := NewSharedInformer(s, &corev1.Pod{}, resync, Indexers{NamespaceIndex: NamespaceIndexFunc})
	fastBackoff(inf.(*sharedInformer).reflector)
	for _, h := range handlers {
		if _, err := inf.AddEventHandler(h); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		inf.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("informer did not stop")
		}
	})
	eventually(t, "informer sync", inf.HasSynced)
	return inf
}

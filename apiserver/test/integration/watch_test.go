package integration

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/informer"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

func restart(t *testing.T, env *harness.Env, dir string, opts ...harness.Option) *harness.Env {
	t.Helper()
	_ = env.Client.Close()
	if err := env.Server.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}
	return harness.Start(t, append(opts, harness.WithDataDir(dir))...)
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatalf("watch closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatalf("no watch event within 10s")
	}
	return watch.Event{}
}

func rvOf(obj runtime.Object) string {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return acc.GetResourceVersion()
}

// A watch from a resourceVersion delivers exactly the later changes, in
// order, with selectors applied; one from before the window gets 410.
func TestWatchFromResourceVersion(t *testing.T) {
	env := harness.Start(t, harness.WithWatchCacheSize(20))
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	first, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "w0", Labels: map[string]string{"sel": "yes"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	upd := first.DeepCopy()
	upd.Data = map[string]string{"a": "b"}
	updated, err := cms.Update(ctx, "default", upd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Delete(ctx, "default", "w0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	w, err := cms.Watch(ctx, "default", metav1.ListOptions{ResourceVersion: first.ResourceVersion, LabelSelector: "sel=yes"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ev := nextEvent(t, w)
	if ev.Type != watch.Modified || rvOf(ev.Object) != updated.ResourceVersion {
		t.Fatalf("event 1 = %s rv %s, want MODIFIED rv %s", ev.Type, rvOf(ev.Object), updated.ResourceVersion)
	}
	ev = nextEvent(t, w)
	if ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).Name != "w0" {
		t.Fatalf("event 2 = %s %v, want DELETED w0", ev.Type, ev.Object)
	}

	// Push the window past the first revision: 410 Gone.
	for i := 0; i < 30; i++ {
		if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fill%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	w2, err := cms.Watch(ctx, "default", metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	if err == nil {
		ev := nextEvent(t, w2)
		w2.Stop()
		st, ok := ev.Object.(*metav1.Status)
		if ev.Type != watch.Error || !ok || st.Code != 410 {
			t.Fatalf("watch from an expired resourceVersion: got %s %v, want ERROR 410", ev.Type, ev.Object)
		}
	} else if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) {
		t.Fatalf("watch from an expired resourceVersion: %v, want 410", err)
	}
}

func TestWatchBookmarksAndInitialEvents(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	for i := 0; i < 3; i++ {
		if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("i%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	w, err := cms.Watch(ctx, "default", metav1.ListOptions{SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := 0; i < 3; i++ {
		if ev := nextEvent(t, w); ev.Type != watch.Added {
			t.Fatalf("initial event %d = %s, want ADDED", i, ev.Type)
		}
	}
	ev := nextEvent(t, w)
	acc, _ := meta.Accessor(ev.Object)
	if ev.Type != watch.Bookmark || acc.GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
		t.Fatalf("after initial events: %s %v, want the initial-events-end BOOKMARK", ev.Type, acc.GetAnnotations())
	}
}

// gatedLW wraps a ListerWatcher so the test can cut the informer's watch
// and hold it off while history moves on.
type gatedLW struct {
	informer.ListerWatcher
	mu      sync.Mutex
	open    chan struct{}
	current watch.Interface
	lists   int
}

func (g *gatedLW) List(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	g.mu.Lock()
	g.lists++
	g.mu.Unlock()
	return g.ListerWatcher.List(ctx, o)
}

func (g *gatedLW) Watch(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	w, err := g.ListerWatcher.Watch(ctx, o)
	g.mu.Lock()
	g.current = w
	g.mu.Unlock()
	return w, err
}

// An informer cut off while more than the watch window of changes and an
// etcd compaction happen relists, and its handlers see every object's final
// state once, deletes as tombstones, nothing twice.
func TestInformerRelistAcrossCompaction(t *testing.T) {
	env := harness.Start(t, harness.WithWatchCacheSize(10))
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	for i := 0; i < 5; i++ {
		if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("c%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	open := make(chan struct{})
	close(open)
	lw := &gatedLW{ListerWatcher: informer.NewListWatch(env.Client, cms.GVR(), "default", nil), open: open}
	inf := informer.NewSharedInformer(lw, &corev1.ConfigMap{}, 0, nil)
	var mu sync.Mutex
	seen := map[string][]string{} // key -> resourceVersions delivered
	deleted := map[string]bool{}
	record := func(obj any) {
		cm := obj.(*corev1.ConfigMap)
		mu.Lock()
		defer mu.Unlock()
		k := cm.Name
		for _, rv := range seen[k] {
			if rv == cm.ResourceVersion {
				t.Errorf("object %s at resourceVersion %s delivered twice", k, rv)
			}
		}
		seen[k] = append(seen[k], cm.ResourceVersion)
	}
	inf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, n any) { record(n) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(informer.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			mu.Lock()
			deleted[obj.(*corev1.ConfigMap).Name] = true
			mu.Unlock()
		},
	})
	ictx, icancel := context.WithCancel(ctx)
	defer icancel()
	go inf.Run(ictx)
	if !informer.WaitForCacheSync(ctx, inf.HasSynced) {
		t.Fatal("informer did not sync")
	}
	waitFor(t, func() bool { lw.mu.Lock(); defer lw.mu.Unlock(); return lw.current != nil })

	// Cut the watch and hold new ones.
	lw.mu.Lock()
	lw.open = make(chan struct{})
	cur := lw.current
	listsBefore := lw.lists
	lw.mu.Unlock()
	cur.Stop()

	// More changes than the window holds, then compact etcd.
	for i := 0; i < 5; i++ {
		if _, err := cms.Delete(ctx, "default", fmt.Sprintf("c%d", i), metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 20; i++ {
		if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	ec, err := clientv3.New(clientv3.Config{Endpoints: env.Server.EtcdEndpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	resp, err := ec.Get(ctx, "/registry/compact-probe")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ec.Compact(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}

	lw.mu.Lock()
	close(lw.open)
	lw.mu.Unlock()

	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for i := 0; i < 5; i++ {
			if !deleted[fmt.Sprintf("c%d", i)] {
				return false
			}
		}
		for i := 0; i < 20; i++ {
			if len(seen[fmt.Sprintf("n%d", i)]) == 0 {
				return false
			}
		}
		return true
	})
	lw.mu.Lock()
	relisted := lw.lists > listsBefore
	lw.mu.Unlock()
	if !relisted {
		t.Fatalf("the informer never relisted")
	}
	if got := len(inf.GetStore().List()); got != 20 {
		t.Fatalf("informer store holds %d objects, want 20", got)
	}
	for _, o := range inf.GetStore().List() {
		cm := o.(*corev1.ConfigMap)
		srv, err := cms.Get(ctx, "default", cm.Name)
		if err != nil || srv.ResourceVersion != cm.ResourceVersion {
			t.Fatalf("store has %s at %s, server %v %v", cm.Name, cm.ResourceVersion, srv, err)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var _ = strconv.Itoa

// TestWatchBatches: events ready together reach a client that allows
// batches in fewer messages, in order, none lost; a client that does not
// gets one message per event; the typed client unpacks batches.
func TestWatchBatches(t *testing.T) {
	const n = 300
	env := harness.Start(t, harness.WithWatchCacheSize(2*n))
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	_, lm, err := cms.List(ctx, "batches", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Namespace](env.Client).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "batches"}}); err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("x", 1000)
	for i := range n {
		if _, err := cms.Create(ctx, "batches", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%03d", i)}, Data: map[string]string{"f": filler}}); err != nil {
			t.Fatal(err)
		}
	}
	// Every event is in the watch cache's window before the watch opens,
	// so all are ready at once.
	rc := resourcev1.NewResourcesClient(env.Client.Conn())
	read := func(batches bool) (messages int) {
		t.Helper()
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := rc.Watch(wctx, &resourcev1.WatchRequest{
			Ref:             &resourcev1.ResourceRef{Version: "v1", Resource: "configmaps", Namespace: "batches"},
			ResourceVersion: lm.ResourceVersion, AllowBatches: batches,
		})
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for got < n {
			msg, err := stream.Recv()
			if err != nil {
				t.Fatalf("after %d events: %v", got, err)
			}
			messages++
			evs := msg.Batch
			if len(evs) == 0 {
				evs = []*resourcev1.WatchEvent{msg}
			} else if !batches {
				t.Fatalf("a batch of %d events sent to a client that did not allow batches", len(evs))
			} else if msg.Type != "" || msg.Object != nil {
				t.Fatalf("a batch with type %q and %d object bytes", msg.Type, len(msg.Object))
			}
			for _, ev := range evs {
				obj, err := client.Decode(ev.Object)
				if err != nil {
					t.Fatal(err)
				}
				cm, ok := obj.(*corev1.ConfigMap)
				if want := fmt.Sprintf("cm-%03d", got); ev.Type != string(watch.Added) || !ok || cm.Name != want {
					t.Fatalf("event %d: %s %T %v, want ADDED %s", got, ev.Type, obj, obj, want)
				}
				got++
			}
		}
		return messages
	}
	if m := read(false); m != n {
		t.Errorf("without batches: %d messages for %d events", m, n)
	}
	m := read(true)
	if m >= n/2 {
		t.Errorf("with batches: %d messages for %d events ready together, want far fewer", m, n)
	}
	t.Logf("%d events in %d batched messages", n, m)

	w, err := cms.Watch(ctx, "batches", metav1.ListOptions{ResourceVersion: lm.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for i := range n {
		ev := nextEvent(t, w)
		if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != fmt.Sprintf("cm-%03d", i) {
			t.Fatalf("typed client event %d: %s %v", i, ev.Type, ev.Object)
		}
	}
	// Events that arrive while the watch is open (through the watcher's
	// queue rather than the window) come in order too.
	for i := range 100 {
		if _, err := cms.Create(ctx, "batches", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("late-%03d", i)}, Data: map[string]string{"f": filler}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		ev := nextEvent(t, w)
		if cm, ok := ev.Object.(*corev1.ConfigMap); ev.Type != watch.Added || !ok || cm.Name != fmt.Sprintf("late-%03d", i) {
			t.Fatalf("typed client late event %d: %s %v", i, ev.Type, ev.Object)
		}
	}
}

package podgc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/informer"
)

// fakePods records the writes.
type fakePods struct {
	mu      sync.Mutex
	failed  map[string]corev1.PodStatus
	deleted []string
	opts    map[string]metav1.DeleteOptions
}

func (f *fakePods) UpdateStatus(_ context.Context, _ string, p *corev1.Pod) (*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed[p.Name] = p.Status
	return p, nil
}

func (f *fakePods) Delete(_ context.Context, _, name string, opts metav1.DeleteOptions) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, name)
	f.opts[name] = opts
	return true, nil
}

func (f *fakePods) deletedSorted() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(slices.Values(f.deleted))
}

// fakeNodes answers the quorum reads from its own set, not the cache's.
type fakeNodes struct {
	exists map[string]bool
	reads  []string
}

func (f *fakeNodes) Get(_ context.Context, _, name string) (*corev1.Node, error) {
	f.reads = append(f.reads, name)
	if f.exists[name] {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
	}
	return nil, apierrors.NewNotFound(corev1.Resource("nodes"), name)
}

type fixture struct {
	gc     *Controller
	pods   *fakePods
	nodes  *fakeNodes
	podIx  informer.Indexer
	nodeIx informer.Indexer
}

func newFixture(t *testing.T, threshold int) *fixture {
	t.Helper()
	f := &fixture{
		pods:   &fakePods{failed: map[string]corev1.PodStatus{}, opts: map[string]metav1.DeleteOptions{}},
		nodes:  &fakeNodes{exists: map[string]bool{}},
		podIx:  informer.NewIndexer(informer.Indexers{controller.PodNodeIndex: controller.PodNodeName}),
		nodeIx: informer.NewIndexer(nil),
	}
	q := controller.NewQueue("podgc-test", nil)
	t.Cleanup(q.ShutDown)
	f.gc = newController(f.pods, f.nodes, informer.NewLister[*corev1.Pod](f.podIx), f.podIx, informer.NewLister[*corev1.Node](f.nodeIx),
		Config{TerminatedPodThreshold: threshold}, zaptest.NewLogger(t), q)
	return f
}

func (f *fixture) addNode(t *testing.T, name string) {
	t.Helper()
	f.nodes.exists[name] = true
	if err := f.nodeIx.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) addPod(t *testing.T, name, node string, phase corev1.PodPhase, created int64, mod func(*corev1.Pod)) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), CreationTimestamp: metav1.Unix(created, 0)},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: phase},
	}
	if mod != nil {
		mod(p)
	}
	if err := f.podIx.Add(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (f *fixture) sync(t *testing.T, key string) {
	t.Helper()
	err := f.gc.sync(context.Background(), key)
	var again *controller.RequeueAfterError
	if err != nil && !errors.As(err, &again) {
		t.Fatalf("sync %s: %v", key, err)
	}
}

// The pods of a node that is gone from the cache and from a quorum read
// are marked Failed with the DisruptionTarget condition and deleted with
// grace 0; a node only missing from the cache keeps its pods.
func TestPodsOfDeletedNode(t *testing.T) {
	f := newFixture(t, 0)
	f.addNode(t, "alive")
	f.addPod(t, "on-alive", "alive", corev1.PodRunning, 1, nil)
	f.addPod(t, "running", "gone", corev1.PodRunning, 1, nil)
	f.addPod(t, "done", "gone", corev1.PodSucceeded, 1, nil)
	f.addPod(t, "terminating", "gone", corev1.PodRunning, 1, func(p *corev1.Pod) {
		ts := metav1.Unix(5, 0)
		p.DeletionTimestamp = &ts
	})
	f.addPod(t, "lagging-pod", "lagging", corev1.PodRunning, 1, nil)
	f.nodes.exists["lagging"] = true // created, not yet in the node cache

	f.sync(t, nodePrefix+"alive")
	f.sync(t, nodePrefix+"lagging")
	if got := f.pods.deletedSorted(); len(got) != 0 {
		t.Fatalf("deleted %v for nodes that exist, want none", got)
	}
	if diff := cmp.Diff([]string{"lagging"}, f.nodes.reads); diff != "" {
		t.Errorf("quorum reads (-want +got):\n%s", diff)
	}

	f.sync(t, nodePrefix+"gone")
	if diff := cmp.Diff([]string{"done", "running", "terminating"}, f.pods.deletedSorted()); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	for name, opts := range f.pods.opts {
		if opts.GracePeriodSeconds == nil || *opts.GracePeriodSeconds != 0 || opts.Preconditions == nil || string(*opts.Preconditions.UID) != name+"-uid" {
			t.Errorf("pod %s deleted with %+v, want grace 0 and its uid as precondition", name, opts)
		}
	}
	if _, ok := f.pods.failed["done"]; ok {
		t.Errorf("a finished pod's status was rewritten")
	}
	for _, name := range []string{"running", "terminating"} {
		st, ok := f.pods.failed[name]
		if !ok {
			t.Errorf("pod %s not marked Failed before deletion", name)
			continue
		}
		if st.Phase != corev1.PodFailed || len(st.Conditions) != 1 || st.Conditions[0].Type != corev1.DisruptionTarget ||
			st.Conditions[0].Reason != ReasonDeletionByPodGC || st.Conditions[0].Status != corev1.ConditionTrue {
			t.Errorf("pod %s status %+v, want Failed with DisruptionTarget/%s", name, st, ReasonDeletionByPodGC)
		}
	}
}

// A pod naming a node the cache lacks quarantines the node; a node the
// cache saw deleted is checked at once.
func TestNodeChecksQueued(t *testing.T) {
	f := newFixture(t, 0)
	f.gc.cfg.Quarantine = time.Hour
	f.addNode(t, "known")
	p := f.addPod(t, "p", "unknown", corev1.PodRunning, 1, nil)
	f.gc.podChanged(p)
	f.gc.podChanged(f.addPod(t, "q", "known", corev1.PodRunning, 1, nil))
	if n := f.gc.queue.Len(); n != 0 {
		t.Fatalf("queue holds %d keys right after the pod events, want none (quarantine)", n)
	}
	f.gc.nodeDeleted(informer.DeletedFinalStateUnknown{Key: "known", Obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "known"}}})
	if n := f.gc.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d keys after a node deletion, want 1", n)
	}
	if key, _ := f.gc.queue.Get(); key != nodePrefix+"known" {
		t.Errorf("queued %q after a node deletion, want %q", key, nodePrefix+"known")
	}
}

// Terminated pods beyond the threshold go, evicted ones first, then the
// oldest; running and pending pods never count.
func TestTerminatedPodThreshold(t *testing.T) {
	f := newFixture(t, 3)
	f.addNode(t, "n")
	f.addPod(t, "running-oldest", "n", corev1.PodRunning, 1, nil)
	f.addPod(t, "pending-old", "", corev1.PodPending, 2, nil)
	f.addPod(t, "succeeded-10", "n", corev1.PodSucceeded, 10, nil)
	f.addPod(t, "failed-20", "n", corev1.PodFailed, 20, nil)
	f.addPod(t, "succeeded-30", "n", corev1.PodSucceeded, 30, nil)
	f.addPod(t, "b-succeeded-40", "n", corev1.PodSucceeded, 40, nil)
	f.addPod(t, "a-succeeded-40", "n", corev1.PodSucceeded, 40, nil)
	f.addPod(t, "evicted-50", "n", corev1.PodFailed, 50, func(p *corev1.Pod) { p.Status.Reason = "Evicted" })
	// 6 terminated, threshold 3: the evicted one, then the two oldest.
	f.sync(t, sweepKey)
	if diff := cmp.Diff([]string{"evicted-50", "failed-20", "succeeded-10"}, f.pods.deletedSorted()); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if len(f.pods.failed) != 0 {
		t.Errorf("statuses rewritten for terminated pods: %v", f.pods.failed)
	}

	// Ties on the creation time go by name.
	f = newFixture(t, 1)
	f.addNode(t, "n")
	f.addPod(t, "b", "n", corev1.PodSucceeded, 40, nil)
	f.addPod(t, "a", "n", corev1.PodSucceeded, 40, nil)
	f.sync(t, sweepKey)
	if diff := cmp.Diff([]string{"a"}, f.pods.deletedSorted()); diff != "" {
		t.Errorf("tie: deleted (-want +got):\n%s", diff)
	}

	// Threshold 0 keeps every terminated pod.
	f = newFixture(t, 0)
	f.addNode(t, "n")
	f.addPod(t, "s", "n", corev1.PodSucceeded, 1, nil)
	f.sync(t, sweepKey)
	if got := f.pods.deletedSorted(); len(got) != 0 {
		t.Errorf("threshold 0 deleted %v", got)
	}
}

// A terminating pod that was never scheduled is force-deleted; a pending
// one that is not terminating stays.
func TestUnscheduledTerminating(t *testing.T) {
	f := newFixture(t, 0)
	f.addPod(t, "pending", "", corev1.PodPending, 1, nil)
	p := f.addPod(t, "stuck", "", corev1.PodPending, 1, func(p *corev1.Pod) {
		ts := metav1.Unix(5, 0)
		p.DeletionTimestamp, p.Finalizers = &ts, []string{"example.com/hold"}
	})
	f.gc.podChanged(p)
	if n := f.gc.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d keys after an unscheduled terminating pod's event, want 1", n)
	}
	if key, _ := f.gc.queue.Get(); key != sweepKey {
		t.Fatalf("queued %q for an unscheduled terminating pod, want the sweep", key)
	}
	f.sync(t, sweepKey)
	if diff := cmp.Diff([]string{"stuck"}, f.pods.deletedSorted()); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if st := f.pods.failed["stuck"]; st.Phase != corev1.PodFailed {
		t.Errorf("stuck pod phase %q before deletion, want Failed", st.Phase)
	}
}

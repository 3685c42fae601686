package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// fakePods records the pod writes.
type fakePods struct {
	mu      sync.Mutex
	created int
	deleted []string
	updated []string
	// deleteErr, when set, answers the deletes of these pods.
	deleteErr map[string]error
}

func (f *fakePods) Create(_ context.Context, ns string, p *corev1.Pod) (*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created++
	p = p.DeepCopy()
	p.Name = fmt.Sprintf("%s%d", p.GenerateName, f.created)
	return p, nil
}

func (f *fakePods) Update(_ context.Context, _ string, p *corev1.Pod) (*corev1.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updated = append(f.updated, p.Name)
	return p, nil
}

func (f *fakePods) Delete(_ context.Context, _, name string, _ metav1.DeleteOptions) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deleted = append(f.deleted, name)
	if err := f.deleteErr[name]; err != nil {
		return false, err
	}
	return true, nil
}

type fakeOwners struct {
	rs     *appsv1.ReplicaSet
	status []appsv1.ReplicaSetStatus
}

func (f *fakeOwners) Get(context.Context, string, string) (*appsv1.ReplicaSet, error) {
	return f.rs, nil
}

func (f *fakeOwners) UpdateStatus(_ context.Context, _ string, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	f.status = append(f.status, rs.Status)
	return rs, nil
}

type fixture struct {
	rc     *Controller[*appsv1.ReplicaSet]
	pods   *fakePods
	owners *fakeOwners
	podIdx informer.Indexer
	rs     *appsv1.ReplicaSet
}

func newFixture(t *testing.T, replicas int32, pods ...*corev1.Pod) *fixture {
	t.Helper()
	lbls := map[string]string{"app": "web"}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "rs-uid", Generation: 1},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbls}},
		},
	}
	rsIdx := informer.NewIndexer(informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc})
	podIdx := informer.NewIndexer(informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc})
	if err := rsIdx.Add(rs); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		if err := podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{pods: &fakePods{}, owners: &fakeOwners{rs: rs}, podIdx: podIdx, rs: rs}
	q := workqueue.New[string]()
	t.Cleanup(q.ShutDown)
	f.rc = newController(ReplicaSetKind, f.pods, f.owners,
		informer.NewLister[*appsv1.ReplicaSet](rsIdx), informer.NewLister[*corev1.Pod](podIdx), zaptest.NewLogger(t), q)
	return f
}

func (f *fixture) ownedPod(name string, mod func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: "ns", UID: types.UID(name + "-uid"), Labels: map[string]string{"app": "web"},
		OwnerReferences:   []metav1.OwnerReference{controller.NewControllerRef(f.rs, ReplicaSetKind.GVK)},
		CreationTimestamp: metav1.Unix(100, 0), ResourceVersion: "1",
	}}
	p.Spec.NodeName = "node"
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	if mod != nil {
		mod(p)
	}
	return p
}

// A cache that has not caught up with our creations must not make the
// controller create again.
func TestNoOverCreationWithStaleCache(t *testing.T) {
	f := newFixture(t, 3)
	ctx := context.Background()
	if err := f.rc.sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.pods.created != 3 {
		t.Fatalf("created %d pods, want 3", f.pods.created)
	}
	// The informer has not delivered the pods: syncing again creates none.
	if err := f.rc.sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.pods.created != 3 {
		t.Fatalf("second sync with a stale cache: created %d pods in all, want 3", f.pods.created)
	}
	if adds, _ := f.rc.expectations.Pending("ns/web"); adds != 3 {
		t.Fatalf("pending creations %d, want 3", adds)
	}
	// The informer catches up.
	for i := range 3 {
		p := f.ownedPod(fmt.Sprintf("web-%d", i), nil)
		if err := f.podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
		f.rc.addPod(p)
	}
	if !f.rc.expectations.Satisfied("ns/web") {
		t.Fatal("expectations not satisfied after observing every creation")
	}
	if err := f.rc.sync(ctx, "ns/web"); err != nil {
		t.Fatal(err)
	}
	if f.pods.created != 3 || len(f.pods.deleted) != 0 {
		t.Fatalf("created %d deleted %v, want 3 and none", f.pods.created, f.pods.deleted)
	}
	last := f.owners.status[len(f.owners.status)-1]
	want := appsv1.ReplicaSetStatus{Replicas: 3, FullyLabeledReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, ObservedGeneration: 1}
	if diff := cmp.Diff(want, last); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestEventsForCreatedAndDeletedPods(t *testing.T) {
	f := newFixture(t, 2)
	rec := &controller.FakeRecorder{}
	f.rc.recorder = rec
	if err := f.rc.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*corev1.Pod{f.ownedPod("a", nil), f.ownedPod("b", nil), f.ownedPod("c", nil)} {
		if err := f.podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
		f.rc.addPod(p)
	}
	f.rc.expectations.Delete("ns/web")
	if err := f.rc.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	if len(f.pods.deleted) != 1 {
		t.Fatalf("deleted %v, want one pod", f.pods.deleted)
	}
	var got []string
	for _, ev := range rec.Events() {
		if ev.Object != f.rs {
			t.Errorf("event %s about %v, want the ReplicaSet", ev.Reason, ev.Object)
		}
		got = append(got, ev.Type+" "+ev.Reason+": "+ev.Message)
	}
	sort.Strings(got)
	want := []string{
		"Normal SuccessfulCreate: Created pod: web-1",
		"Normal SuccessfulCreate: Created pod: web-2",
		"Normal SuccessfulDelete: Deleted pod: " + f.pods.deleted[0],
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestScaleDownDeletesLeastValuable(t *testing.T) {
	f := newFixture(t, 2)
	pods := []*corev1.Pod{
		f.ownedPod("ready-old", nil),
		f.ownedPod("unscheduled", func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Status.Phase = corev1.PodPending
			p.Status.Conditions = nil
		}),
		f.ownedPod("not-ready", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }),
		f.ownedPod("ready-new", func(p *corev1.Pod) { p.CreationTimestamp = metav1.Unix(500, 0) }),
		f.ownedPod("finished", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }),
	}
	for _, p := range pods {
		if err := f.podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.rc.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	sort.Strings(f.pods.deleted)
	if diff := cmp.Diff([]string{"not-ready", "unscheduled"}, f.pods.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	// Nothing more until the informer reports the deletions.
	if err := f.rc.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	if len(f.pods.deleted) != 2 {
		t.Errorf("stale cache: deleted %v, want only the first two", f.pods.deleted)
	}
}

func TestAdoptAndRelease(t *testing.T) {
	f := newFixture(t, 2)
	orphan := f.ownedPod("orphan", func(p *corev1.Pod) { p.OwnerReferences = nil })
	stray := f.ownedPod("stray", func(p *corev1.Pod) { p.Labels = map[string]string{"app": "other"} })
	foreign := f.ownedPod("foreign", func(p *corev1.Pod) { p.OwnerReferences[0].UID = "other-uid" })
	kept := f.ownedPod("kept", nil)
	for _, p := range []*corev1.Pod{orphan, stray, foreign, kept} {
		if err := f.podIdx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.rc.sync(context.Background(), "ns/web"); err != nil {
		t.Fatal(err)
	}
	sort.Strings(f.pods.updated)
	if diff := cmp.Diff([]string{"orphan", "stray"}, f.pods.updated); diff != "" {
		t.Errorf("adopted or released (-want +got):\n%s", diff)
	}
	// orphan + kept = 2 = replicas: nothing created or deleted.
	if f.pods.created != 0 || len(f.pods.deleted) != 0 {
		t.Errorf("created %d deleted %v, want nothing", f.pods.created, f.pods.deleted)
	}
}

// A delete answered NotFound (the pod went already, its deletion perhaps
// observed before we asked) lowers the expectation, as upstream: the
// controller is not held back for ExpectationsTimeout. Other failures
// lower it too and are returned.
func TestDeleteFailuresLowerExpectations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		wantErr bool
	}{
		{name: "not found", err: apierrors.NewNotFound(corev1.Resource("pods"), "not-ready")},
		{name: "server error", err: apierrors.NewInternalError(errors.New("boom")), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, 2)
			for _, p := range []*corev1.Pod{
				f.ownedPod("a", nil), f.ownedPod("b", nil),
				f.ownedPod("not-ready", func(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }),
			} {
				if err := f.podIdx.Add(p); err != nil {
					t.Fatal(err)
				}
			}
			f.pods.deleteErr = map[string]error{"not-ready": tc.err}
			err := f.rc.sync(context.Background(), "ns/web")
			if (err != nil) != tc.wantErr {
				t.Fatalf("sync error = %v, want error %v", err, tc.wantErr)
			}
			if diff := cmp.Diff([]string{"not-ready"}, f.pods.deleted); diff != "" {
				t.Fatalf("deleted (-want +got):\n%s", diff)
			}
			if adds, dels := f.rc.expectations.Pending("ns/web"); adds != 0 || dels != 0 {
				t.Errorf("pending expectations %d creations, %d deletions; want none after the failed delete", adds, dels)
			}
			if !f.rc.expectations.Satisfied("ns/web") {
				t.Errorf("expectations not satisfied after the failed delete")
			}
		})
	}
}

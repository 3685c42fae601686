package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/informer"
)

type fakeNodes struct{ status, spec []*corev1.Node }

func (f *fakeNodes) Update(_ context.Context, _ string, n *corev1.Node) (*corev1.Node, error) {
	f.spec = append(f.spec, n)
	return n, nil
}

func (f *fakeNodes) UpdateStatus(_ context.Context, _ string, n *corev1.Node) (*corev1.Node, error) {
	f.status = append(f.status, n)
	return n, nil
}

type fakePods struct{ deleted, notReady []string }

func (f *fakePods) UpdateStatus(_ context.Context, _ string, p *corev1.Pod) (*corev1.Pod, error) {
	if c := p.Status.Conditions[0]; c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse {
		f.notReady = append(f.notReady, p.Name)
	}
	return p, nil
}

func (f *fakePods) Delete(_ context.Context, _, name string, _ metav1.DeleteOptions) (bool, error) {
	f.deleted = append(f.deleted, name)
	return false, nil
}

type fixture struct {
	nc     *Controller
	now    time.Time
	nodes  *fakeNodes
	pods   *fakePods
	nodeIx informer.Indexer
	leases informer.Indexer
	podIx  informer.Indexer
	// nodeEvents and evictions record the controller's events.
	nodeEvents, evictions *controller.FakeRecorder
}

const grace = 2 * time.Second

func newFixture(t *testing.T) *fixture {
	f := &fixture{
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nodes: &fakeNodes{}, pods: &fakePods{},
		nodeIx: informer.NewIndexer(nil), leases: informer.NewIndexer(informer.Indexers{}),
		podIx: informer.NewIndexer(informer.Indexers{controller.PodNodeIndex: controller.PodNodeName}),
	}
	f.nc = newController(f.nodes, f.pods, informer.NewLister[*corev1.Node](f.nodeIx), informer.NewLister[*coordinationv1.Lease](f.leases),
		f.podIx, Config{GracePeriod: grace, Now: func() time.Time { return f.now }}, zaptest.NewLogger(t), controller.NewQueue("test", nil))
	f.nodeEvents, f.evictions = &controller.FakeRecorder{}, &controller.FakeRecorder{}
	f.nc.nodeEvents, f.nc.evictionEvents = f.nodeEvents, f.evictions
	return f
}

// summary lists the recorded events as "Kind/name Type Reason: Message".
func summary(t *testing.T, r *controller.FakeRecorder) []string {
	t.Helper()
	var out []string
	for _, ev := range r.Events() {
		m, err := meta.Accessor(ev.Object)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%T/%s %s %s: %s", ev.Object, m.GetName(), ev.Type, ev.Reason, ev.Message))
	}
	return out
}

func (f *fixture) sync(t *testing.T) time.Duration {
	t.Helper()
	err := f.nc.sync(context.Background(), "n1")
	var again *controller.RequeueAfterError
	if errors.As(err, &again) {
		return again.After
	}
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return 0
}

func readyNode(at time.Time, st corev1.ConditionStatus) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "n1"},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: st, Reason: "KubeletReady", LastHeartbeatTime: metav1.NewTime(at)},
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, LastHeartbeatTime: metav1.NewTime(at)},
		}},
	}
}

func (f *fixture) renew() {
	ts := metav1.NewMicroTime(f.now)
	_ = f.leases.Update(&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "n1", Namespace: corev1.NamespaceNodeLease}, Spec: coordinationv1.LeaseSpec{RenewTime: &ts}})
}

func TestSilentNodeBecomesUnknownAndRecovers(t *testing.T) {
	f := newFixture(t)
	_ = f.nodeIx.Add(readyNode(f.now, corev1.ConditionTrue))
	f.renew()
	if after := f.sync(t); after != grace {
		t.Errorf("healthy node requeued after %v, want %v", after, grace)
	}
	// The lease keeps the node alive although its status is old.
	f.now = f.now.Add(1500 * time.Millisecond)
	f.renew()
	f.sync(t)
	f.now = f.now.Add(1500 * time.Millisecond)
	if after := f.sync(t); after != 500*time.Millisecond || len(f.nodes.status) != 0 {
		t.Fatalf("after a renewal 1.5s ago: requeue %v, %d status writes; want 500ms, none", after, len(f.nodes.status))
	}
	f.now = f.now.Add(time.Second)
	f.sync(t)
	if len(f.nodes.status) != 1 {
		t.Fatalf("%d status writes after the grace period, want 1", len(f.nodes.status))
	}
	if diff := cmp.Diff([]string{"*v1.Node/n1 Normal NodeNotReady: Node n1 status is now: NodeNotReady"}, summary(t, f.nodeEvents)); diff != "" {
		t.Errorf("node events (-want +got):\n%s", diff)
	}
	got := f.nodes.status[0]
	for _, c := range got.Status.Conditions {
		if c.Status != corev1.ConditionUnknown || c.Reason != ReasonUnknown || c.Message != MessageUnknown || !c.LastTransitionTime.Time.Equal(f.now) {
			t.Errorf("condition %s = %s %q %q at %v; want Unknown %q %q at %v", c.Type, c.Status, c.Reason, c.Message, c.LastTransitionTime, ReasonUnknown, MessageUnknown, f.now)
		}
	}
	if len(f.nodes.spec) != 1 {
		t.Fatalf("%d spec writes, want 1 (taints)", len(f.nodes.spec))
	}
	tainted := f.nodes.spec[0]
	var keys []string
	for _, tn := range tainted.Spec.Taints {
		keys = append(keys, tn.Key+":"+string(tn.Effect))
	}
	want := []string{"node.kubernetes.io/unreachable:NoSchedule", "node.kubernetes.io/unreachable:NoExecute"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("taints (-want +got):\n%s", diff)
	}

	// The node reports again: the taints go.
	f.now = f.now.Add(time.Second)
	back := readyNode(f.now, corev1.ConditionTrue)
	back.Spec.Taints = append(tainted.Spec.Taints, corev1.Taint{Key: "dedicated", Value: "x", Effect: corev1.TaintEffectNoSchedule})
	_ = f.nodeIx.Update(back)
	f.nodes.spec = nil
	f.sync(t)
	if len(f.nodes.spec) != 1 || len(f.nodes.spec[0].Spec.Taints) != 1 || f.nodes.spec[0].Spec.Taints[0].Key != "dedicated" {
		t.Errorf("after recovery taints are %+v, want only the foreign one", f.nodes.spec)
	}
}

func TestNeverReportedNode(t *testing.T) {
	f := newFixture(t)
	_ = f.nodeIx.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	f.sync(t)
	f.now = f.now.Add(grace)
	f.sync(t)
	if len(f.nodes.status) != 1 {
		t.Fatalf("%d status writes, want 1", len(f.nodes.status))
	}
	c := condition(f.nodes.status[0], corev1.NodeReady)
	if c == nil || c.Status != corev1.ConditionUnknown || c.Reason != ReasonNeverUpdated {
		t.Errorf("Ready = %+v, want Unknown %s", c, ReasonNeverUpdated)
	}
	if got := summary(t, f.nodeEvents); len(got) != 0 {
		t.Errorf("events about a node that was never ready: %v, want none", got)
	}
}

func TestNotReadyTaints(t *testing.T) {
	f := newFixture(t)
	_ = f.nodeIx.Add(readyNode(f.now, corev1.ConditionFalse))
	f.sync(t)
	if len(f.nodes.spec) != 1 || len(f.nodes.spec[0].Spec.Taints) != 2 || f.nodes.spec[0].Spec.Taints[0].Key != corev1.TaintNodeNotReady {
		t.Errorf("taints of a NotReady node: %+v, want the two not-ready ones", f.nodes.spec)
	}
}

func tol(key string, effect corev1.TaintEffect, secs *int64) corev1.Toleration {
	op := corev1.TolerationOpExists
	return corev1.Toleration{Key: key, Operator: op, Effect: effect, TolerationSeconds: secs}
}

func TestEvictAt(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 10, 0, time.UTC)
	added := metav1.NewTime(now.Add(-10 * time.Second))
	taints := []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added}}
	for _, tc := range []struct {
		name string
		tols []corev1.Toleration
		at   time.Time
		ok   bool
	}{
		{name: "no toleration", at: now, ok: true},
		{name: "other key", tols: []corev1.Toleration{tol("foo", "", nil)}, at: now, ok: true},
		{name: "NoSchedule only", tols: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil)}, at: now, ok: true},
		{name: "forever", tols: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, nil)}},
		{name: "wildcard", tols: []corev1.Toleration{{Operator: corev1.TolerationOpExists}}},
		{name: "300s", tols: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, new(int64(300)))}, at: added.Add(300 * time.Second), ok: true},
		{name: "5s, ran out", tols: []corev1.Toleration{tol(corev1.TaintNodeUnreachable, "", new(int64(5)))}, at: added.Add(5 * time.Second), ok: true},
		{name: "equal value mismatch", tols: []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpEqual, Value: "x"}}, at: now, ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			at, ok := evictAt(&corev1.Pod{Spec: corev1.PodSpec{Tolerations: tc.tols}}, taints, now)
			if ok != tc.ok || !at.Equal(tc.at) {
				t.Errorf("evictAt = %v, %v; want %v, %v", at, ok, tc.at, tc.ok)
			}
		})
	}
}

func TestEvictsPodsAsTolerationsRunOut(t *testing.T) {
	f := newFixture(t)
	node := readyNode(f.now, corev1.ConditionUnknown)
	added := metav1.NewTime(f.now)
	node.Spec.Taints = []corev1.Taint{
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute, TimeAdded: &added},
	}
	_ = f.nodeIx.Add(node)
	pod := func(name string, tols ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Spec: corev1.PodSpec{NodeName: "n1", Tolerations: tols}}
	}
	ready := pod("ready-forever", tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, nil))
	ready.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	for _, p := range []*corev1.Pod{
		ready,
		pod("intolerant"),
		pod("ten-seconds", tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, new(int64(10)))),
		pod("forever", tol(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, nil)),
	} {
		_ = f.podIx.Add(p)
	}
	f.sync(t)
	if diff := cmp.Diff([]string{"intolerant"}, f.pods.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"*v1.Pod/intolerant Normal TaintManagerEviction: Marking for deletion Pod ns/intolerant"}, summary(t, f.evictions)); diff != "" {
		t.Errorf("eviction events (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ready-forever"}, f.pods.notReady); diff != "" {
		t.Errorf("pods marked not ready on the unreachable node (-want +got):\n%s", diff)
	}
	_ = f.podIx.Delete(pod("intolerant"))
	f.pods.deleted = nil
	f.now = f.now.Add(4 * time.Second)
	if after := f.sync(t); after != 6*time.Second || len(f.pods.deleted) != 0 {
		t.Errorf("requeued after %v, deleted %v; want 6s (the 10s toleration), none", after, f.pods.deleted)
	}
	f.now = f.now.Add(6 * time.Second)
	f.sync(t)
	if diff := cmp.Diff([]string{"ten-seconds"}, f.pods.deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
}

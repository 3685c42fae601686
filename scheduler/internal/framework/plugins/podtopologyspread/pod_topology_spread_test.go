package podtopologyspread

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

const (
	zone = corev1.LabelTopologyZone
	host = corev1.LabelHostname
)

type fakeObjects struct {
	services    []*corev1.Service
	replicaSets []*appsv1.ReplicaSet
}

func (fakeObjects) Namespace(string) (*corev1.Namespace, bool) { return nil, false }
func (fakeObjects) Namespaces() []*corev1.Namespace            { return nil }
func (f fakeObjects) Services(ns string) []*corev1.Service {
	var out []*corev1.Service
	for _, s := range f.services {
		if s.Namespace == ns {
			out = append(out, s)
		}
	}
	return out
}
func (fakeObjects) ReplicationController(_, _ string) (*corev1.ReplicationController, bool) {
	return nil, false
}
func (f fakeObjects) ReplicaSet(ns, name string) (*appsv1.ReplicaSet, bool) {
	for _, rs := range f.replicaSets {
		if rs.Namespace == ns && rs.Name == name {
			return rs, true
		}
	}
	return nil, false
}
func (fakeObjects) StatefulSet(_, _ string) (*appsv1.StatefulSet, bool) { return nil, false }

func spread(p *corev1.Pod, maxSkew int32, key string, action corev1.UnsatisfiableConstraintAction, mutate ...func(*corev1.TopologySpreadConstraint)) *corev1.Pod {
	c := corev1.TopologySpreadConstraint{
		MaxSkew: maxSkew, TopologyKey: key, WhenUnsatisfiable: action,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
	}
	for _, m := range mutate {
		m(&c)
	}
	p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	return p
}

func testNodes() []*corev1.Node {
	return []*corev1.Node{
		fixture.Node("n1", "4", "8Gi").Label(zone, "a").Label(host, "n1").Obj(),
		fixture.Node("n2", "4", "8Gi").Label(zone, "a").Label(host, "n2").Obj(),
		fixture.Node("n3", "4", "8Gi").Label(zone, "b").Label(host, "n3").Obj(),
		fixture.Node("n4", "4", "8Gi").Label(zone, "b").Label(host, "n4").Obj(),
		fixture.Node("n5", "4", "8Gi").Label(host, "n5").Obj(),
	}
}

// testPods: app=web twice on n1, once on n2 and n3: zone a 3, zone b 1.
func testPods() []*corev1.Pod {
	return []*corev1.Pod{
		fixture.Pod("w1").Label("app", "web").Node("n1").Obj(),
		fixture.Pod("w2").Label("app", "web").Node("n1").Obj(),
		fixture.Pod("w3").Label("app", "web").Node("n2").Obj(),
		fixture.Pod("w4").Label("app", "web").Node("n3").Obj(),
		fixture.Pod("other-ns").Namespace("other").Label("app", "web").Node("n4").Obj(),
		fixture.Pod("db").Label("app", "db").Node("n4").Obj(),
	}
}

func TestFilter(t *testing.T) {
	const (
		ok      = framework.Success
		unsched = framework.Unschedulable
		unres   = framework.UnschedulableAndUnresolvable
	)
	web := func() *corev1.Pod { return fixture.Pod("p").Label("app", "web").Obj() }
	tests := []struct {
		name string
		pod  *corev1.Pod
		want map[string]framework.Code
	}{
		{"no constraints", web(), map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok, "n5": ok}},
		{"zone maxSkew 1", spread(web(), 1, zone, corev1.DoNotSchedule),
			map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": ok, "n4": ok, "n5": unres}},
		{"zone maxSkew 3", spread(web(), 3, zone, corev1.DoNotSchedule),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok, "n5": unres}},
		{"hostname maxSkew 1", spread(web(), 1, host, corev1.DoNotSchedule),
			map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": unsched, "n4": ok, "n5": ok}},
		{"ScheduleAnyway does not filter", spread(web(), 1, zone, corev1.ScheduleAnyway),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok, "n5": ok}},
		{"pod not matching its own selector", spread(fixture.Pod("p").Obj(), 1, zone, corev1.DoNotSchedule),
			map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": ok, "n4": ok, "n5": unres}},
		{"minDomains above the domain count makes the minimum 0",
			spread(web(), 2, zone, corev1.DoNotSchedule, func(c *corev1.TopologySpreadConstraint) { three := int32(3); c.MinDomains = &three }),
			map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": ok, "n4": ok, "n5": unres}},
		{"nodeAffinityPolicy Honor leaves zone b out of the minimum",
			spread(fixture.Pod("p").Label("app", "web").NodeSelector(map[string]string{zone: "a"}).Obj(), 1, zone, corev1.DoNotSchedule),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok, "n5": unres}},
		{"nodeAffinityPolicy Ignore counts zone b",
			spread(fixture.Pod("p").Label("app", "web").NodeSelector(map[string]string{zone: "a"}).Obj(), 1, zone, corev1.DoNotSchedule,
				func(c *corev1.TopologySpreadConstraint) {
					p := corev1.NodeInclusionPolicyIgnore
					c.NodeAffinityPolicy = &p
				}),
			map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": ok, "n4": ok, "n5": unres}},
		{"matchLabelKeys narrows the selector",
			spread(fixture.Pod("p").Label("app", "web").Label("rev", "2").Obj(), 1, host, corev1.DoNotSchedule,
				func(c *corev1.TopologySpreadConstraint) { c.MatchLabelKeys = []string{"rev"} }),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok, "n5": ok}},
	}
	snap := cache.NewSnapshotFrom(testNodes(), testPods())
	pl, err := New(nil, framework.NewHandle(snap, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := pl.(*Plugin)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := framework.NewCycleState()
			if st := p.PreFilter(context.Background(), state, tt.pod); !st.IsSuccess() && !st.IsSkip() { // Skip: Filter would accept every node
				t.Fatalf("PreFilter: %s", st.Message())
			}
			got := map[string]framework.Code{}
			for _, ni := range snap.List() {
				got[ni.Node().Name] = p.Filter(context.Background(), state, tt.pod, ni).Code()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScore(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}}
	tests := []struct {
		name     string
		objs     framework.ObjectLister
		pod      *corev1.Pod
		nodes    []string // feasible nodes; all if nil
		want     map[string]int64
		wantSkip bool
	}{
		{"no constraints and no owner", fakeObjects{}, fixture.Pod("p").Label("app", "web").Obj(), nil, nil, true},
		// hostname weight log(4+2): raw n1 2*1.79 = 4, n2 2, n3 2, n4 0;
		// 100*(4+0-raw)/4.
		{"hostname maxSkew 1", nil, spread(fixture.Pod("p").Label("app", "web").Obj(), 1, host, corev1.ScheduleAnyway),
			[]string{"n1", "n2", "n3", "n4"}, map[string]int64{"n1": 0, "n2": 50, "n3": 50, "n4": 100}, false},
		// zone weight log(2+2): raw a 3*1.39 = 4, b 1; 100*(4+1-raw)/4;
		// n5 has no zone and scores 0.
		{"nodes without the key are ignored", nil, spread(fixture.Pod("p").Label("app", "web").Obj(), 1, zone, corev1.ScheduleAnyway),
			nil, map[string]int64{"n1": 25, "n2": 25, "n3": 100, "n4": 100, "n5": 0}, false},
		// System defaults from the Service's selector: hostname (maxSkew 3,
		// weight log 7) and zone (maxSkew 5, weight log 5, 3 domains with
		// n5's empty zone): raw n1 15, n2 13, n3 10, n4 8, n5 2;
		// 100*(15+2-raw)/15.
		{"system default constraints from a Service", fakeObjects{services: []*corev1.Service{svc}}, fixture.Pod("p").Label("app", "web").Obj(),
			nil, map[string]int64{"n1": 13, "n2": 26, "n3": 46, "n4": 60, "n5": 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := cache.NewSnapshotFrom(testNodes(), testPods())
			pl, err := New(nil, framework.NewHandle(snap, tt.objs))
			if err != nil {
				t.Fatal(err)
			}
			p := pl.(*Plugin)
			var feasible []*framework.NodeInfo
			for _, ni := range snap.List() {
				if tt.nodes == nil || contains(tt.nodes, ni.Node().Name) {
					feasible = append(feasible, ni)
				}
			}
			state := framework.NewCycleState()
			st := p.PreScore(context.Background(), state, tt.pod, feasible)
			if tt.wantSkip {
				if !st.IsSkip() {
					t.Fatalf("PreScore = %v, want Skip", st.Code())
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("PreScore: %v %s", st.Code(), st.Message())
			}
			var scores framework.NodeScoreList
			for _, ni := range feasible {
				s, st := p.Score(context.Background(), state, tt.pod, ni)
				if !st.IsSuccess() {
					t.Fatal(st.Message())
				}
				scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
			}
			p.NormalizeScore(context.Background(), state, tt.pod, scores)
			got := map[string]int64{}
			for _, s := range scores {
				got[s.Name] = s.Score
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestDefaultSelector(t *testing.T) {
	ctrl := true
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default"},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "hash": "1"}}}}
	objs := fakeObjects{
		services: []*corev1.Service{
			{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "default"}},
			{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "db"}}},
		},
		replicaSets: []*appsv1.ReplicaSet{rs},
	}
	pod := fixture.Pod("p").Label("app", "web").Label("hash", "1").Obj()
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", Controller: &ctrl}}
	sel := DefaultSelector(pod, objs)
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"app": "web", "hash": "1"}, true},
		{map[string]string{"app": "web", "hash": "2"}, false},
		{map[string]string{"app": "db"}, false},
	} {
		if got := sel.Matches(labels.Set(tc.labels)); got != tc.want {
			t.Errorf("selector %v matches %v = %v, want %v", sel, tc.labels, got, tc.want)
		}
	}
	if s := DefaultSelector(fixture.Pod("lone").Label("app", "x").Obj(), objs); !s.Empty() {
		t.Errorf("DefaultSelector of a pod with no Service or owner = %v, want empty", s)
	}
}

// TestFilterIgnoresTerminatingPods checks that pods being deleted are not
// counted, also when the counts come from the snapshot's label index (a
// one-label selector) rather than from matching each pod.
func TestFilterIgnoresTerminatingPods(t *testing.T) {
	pods := testPods()
	now := metav1.Now()
	for _, n := range []string{"n3", "n4"} {
		p := fixture.Pod("gone-"+n).Label("app", "web").Node(n).Obj()
		p.DeletionTimestamp = &now
		pods = append(pods, p)
	}
	snap := cache.NewSnapshotFrom(testNodes(), pods)
	pl, err := New(nil, framework.NewHandle(snap, nil))
	if err != nil {
		t.Fatal(err)
	}
	p := pl.(*Plugin)
	twoLabels := func(c *corev1.TopologySpreadConstraint) {
		c.LabelSelector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
	}
	// Zone a holds 3 live app=web pods, zone b 1 (and 2 being deleted).
	want := map[string]framework.Code{"n1": framework.Unschedulable, "n2": framework.Unschedulable, "n3": framework.Success, "n4": framework.Success, "n5": framework.UnschedulableAndUnresolvable}
	for name, pod := range map[string]*corev1.Pod{
		"one-label selector": spread(fixture.Pod("p").Label("app", "web").Obj(), 1, zone, corev1.DoNotSchedule),
		"two-label selector": spread(fixture.Pod("p").Label("app", "web").Obj(), 1, zone, corev1.DoNotSchedule, twoLabels),
	} {
		t.Run(name, func(t *testing.T) {
			state := framework.NewCycleState()
			if st := p.PreFilter(context.Background(), state, pod); !st.IsSuccess() {
				t.Fatalf("PreFilter: %s", st.Message())
			}
			got := map[string]framework.Code{}
			for _, ni := range snap.List() {
				got[ni.Node().Name] = p.Filter(context.Background(), state, pod, ni).Code()
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
		})
	}
}

package interpodaffinity

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

const (
	zone = corev1.LabelTopologyZone
	host = corev1.LabelHostname
)

type fakeObjects struct{ namespaces []*corev1.Namespace }

func (f fakeObjects) Namespace(name string) (*corev1.Namespace, bool) {
	for _, n := range f.namespaces {
		if n.Name == name {
			return n, true
		}
	}
	return nil, false
}
func (f fakeObjects) Namespaces() []*corev1.Namespace { return f.namespaces }
func (fakeObjects) Services(string) []*corev1.Service { return nil }
func (fakeObjects) ReplicationController(_, _ string) (*corev1.ReplicationController, bool) {
	return nil, false
}
func (fakeObjects) ReplicaSet(_, _ string) (*appsv1.ReplicaSet, bool)   { return nil, false }
func (fakeObjects) StatefulSet(_, _ string) (*appsv1.StatefulSet, bool) { return nil, false }

func namespace(name string, lbls map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func term(key string, app string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		TopologyKey:   key,
	}
}

func withAffinity(p *corev1.Pod, affinity, anti []corev1.PodAffinityTerm) *corev1.Pod {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	if len(affinity) > 0 {
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: affinity}
	}
	if len(anti) > 0 {
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return p
}

func withPreferred(p *corev1.Pod, affinity, anti []corev1.WeightedPodAffinityTerm) *corev1.Pod {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	if len(affinity) > 0 {
		p.Spec.Affinity.PodAffinity = &corev1.PodAffinity{PreferredDuringSchedulingIgnoredDuringExecution: affinity}
	}
	if len(anti) > 0 {
		p.Spec.Affinity.PodAntiAffinity = &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: anti}
	}
	return p
}

func testNodes() []*corev1.Node {
	return []*corev1.Node{
		fixture.Node("n1", "4", "8Gi").Label(zone, "a").Label(host, "n1").Obj(),
		fixture.Node("n2", "4", "8Gi").Label(zone, "a").Label(host, "n2").Obj(),
		fixture.Node("n3", "4", "8Gi").Label(zone, "b").Label(host, "n3").Obj(),
		fixture.Node("n4", "4", "8Gi").Label(host, "n4").Obj(),
	}
}

func newPlugin(t *testing.T, snap *cache.Snapshot, objs framework.ObjectLister) *Plugin {
	t.Helper()
	pl, err := New(nil, framework.NewHandle(snap, objs))
	if err != nil {
		t.Fatal(err)
	}
	return pl.(*Plugin)
}

func TestFilter(t *testing.T) {
	existing := []*corev1.Pod{
		fixture.Pod("db").Label("app", "db").Node("n1").Obj(),
		withAffinity(fixture.Pod("no-web-in-my-zone").Label("app", "lonely").Node("n3").Obj(), nil,
			[]corev1.PodAffinityTerm{term(zone, "web")}),
		fixture.Pod("prod-db").Namespace("prod").Label("app", "db").Node("n2").Obj(),
		func() *corev1.Pod {
			p := fixture.Pod("no-test-neighbours").Namespace("prod").Node("n4").Obj()
			tm := term(host, "x")
			tm.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "test"}}
			return withAffinity(p, nil, []corev1.PodAffinityTerm{tm})
		}(),
	}
	objs := fakeObjects{namespaces: []*corev1.Namespace{
		namespace("default", nil), namespace("prod", map[string]string{"env": "prod"}), namespace("test", map[string]string{"env": "test"}),
	}}
	const (
		ok      = framework.Success
		unsched = framework.Unschedulable
		unres   = framework.UnschedulableAndUnresolvable
	)
	tests := []struct {
		name    string
		pod     *corev1.Pod
		want    map[string]framework.Code
		wantMsg map[string]string
	}{
		{"no affinity", fixture.Pod("p").Label("app", "other").Obj(),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": ok}, nil},
		{"existing pod's anti-affinity repels the pod from its zone", fixture.Pod("p").Label("app", "web").Obj(),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": unsched, "n4": ok},
			map[string]string{"n3": ErrReasonExistingAntiAffinityRulesNotMatch}},
		{"affinity to db's zone", withAffinity(fixture.Pod("p").Obj(), []corev1.PodAffinityTerm{term(zone, "db")}, nil),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": unres, "n4": unres},
			map[string]string{"n3": ErrReasonAffinityRulesNotMatch}},
		{"anti-affinity to db's host", withAffinity(fixture.Pod("p").Obj(), nil, []corev1.PodAffinityTerm{term(host, "db")}),
			map[string]framework.Code{"n1": unsched, "n2": ok, "n3": ok, "n4": ok},
			map[string]string{"n1": ErrReasonAntiAffinityRulesNotMatch}},
		{"first pod of a self-affine group goes anywhere with the key",
			withAffinity(fixture.Pod("p").Label("app", "cache").Obj(), []corev1.PodAffinityTerm{term(zone, "cache")}, nil),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": unres}, nil},
		{"affinity to a pod nowhere", withAffinity(fixture.Pod("p").Obj(), []corev1.PodAffinityTerm{term(zone, "cache")}, nil),
			map[string]framework.Code{"n1": unres, "n2": unres, "n3": unres, "n4": unres}, nil},
		{"namespaces: anti-affinity to db in prod", withAffinity(fixture.Pod("p").Obj(), nil, []corev1.PodAffinityTerm{func() corev1.PodAffinityTerm {
			tm := term(host, "db")
			tm.Namespaces = []string{"prod"}
			return tm
		}()}), map[string]framework.Code{"n1": ok, "n2": unsched, "n3": ok, "n4": ok}, nil},
		{"namespaceSelector: anti-affinity to db everywhere", withAffinity(fixture.Pod("p").Obj(), nil, []corev1.PodAffinityTerm{func() corev1.PodAffinityTerm {
			tm := term(host, "db")
			tm.NamespaceSelector = &metav1.LabelSelector{}
			return tm
		}()}), map[string]framework.Code{"n1": unsched, "n2": unsched, "n3": ok, "n4": ok}, nil},
		{"namespaceSelector by labels", withAffinity(fixture.Pod("p").Obj(), nil, []corev1.PodAffinityTerm{func() corev1.PodAffinityTerm {
			tm := term(host, "db")
			tm.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
			return tm
		}()}), map[string]framework.Code{"n1": ok, "n2": unsched, "n3": ok, "n4": ok}, nil},
		{"existing pod's anti-affinity selects the pod's namespace by labels", fixture.Pod("p").Namespace("test").Label("app", "x").Obj(),
			map[string]framework.Code{"n1": ok, "n2": ok, "n3": ok, "n4": unsched}, nil},
	}
	snap := cache.NewSnapshotFrom(testNodes(), existing)
	p := newPlugin(t, snap, objs)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := framework.NewCycleState()
			if st := p.PreFilter(context.Background(), state, tt.pod); !st.IsSuccess() && !st.IsSkip() { // Skip: Filter would accept every node
				t.Fatalf("PreFilter: %v", st.Message())
			}
			got := map[string]framework.Code{}
			for _, ni := range snap.List() {
				st := p.Filter(context.Background(), state, tt.pod, ni)
				got[ni.Node().Name] = st.Code()
				if msg, ok := tt.wantMsg[ni.Node().Name]; ok && st.Message() != msg {
					t.Errorf("Filter(%s) message %q, want %q", ni.Node().Name, st.Message(), msg)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("codes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScore(t *testing.T) {
	weighted := func(w int32, key, app string) corev1.WeightedPodAffinityTerm {
		return corev1.WeightedPodAffinityTerm{Weight: w, PodAffinityTerm: term(key, app)}
	}
	tests := []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     map[string]int64
		wantSkip bool
	}{
		{"nothing to score", []*corev1.Pod{fixture.Pod("db").Label("app", "db").Node("n1").Obj()},
			fixture.Pod("p").Obj(), nil, true},
		{"preferred affinity to db's zone",
			[]*corev1.Pod{fixture.Pod("db").Label("app", "db").Node("n1").Obj()},
			withPreferred(fixture.Pod("p").Obj(), []corev1.WeightedPodAffinityTerm{weighted(10, zone, "db")}, nil),
			map[string]int64{"n1": 100, "n2": 100, "n3": 0, "n4": 0}, false},
		{"preferred anti-affinity to db's host",
			[]*corev1.Pod{fixture.Pod("db").Label("app", "db").Node("n1").Obj()},
			withPreferred(fixture.Pod("p").Obj(), nil, []corev1.WeightedPodAffinityTerm{weighted(5, host, "db")}),
			map[string]int64{"n1": 0, "n2": 100, "n3": 100, "n4": 100}, false},
		{"affinity 2 to zone, anti-affinity 1 to host: min -> 0, max -> 100",
			[]*corev1.Pod{fixture.Pod("db").Label("app", "db").Node("n1").Obj()},
			withPreferred(fixture.Pod("p").Obj(), []corev1.WeightedPodAffinityTerm{weighted(2, zone, "db")}, []corev1.WeightedPodAffinityTerm{weighted(1, host, "db")}),
			// n1: 2-1 = 1, n2: 2, n3 and n4: 0.
			map[string]int64{"n1": 50, "n2": 100, "n3": 0, "n4": 0}, false},
		{"existing pod's required affinity counts with hardPodAffinityWeight",
			[]*corev1.Pod{withAffinity(fixture.Pod("web").Node("n3").Obj(), []corev1.PodAffinityTerm{term(zone, "cache")}, nil)},
			fixture.Pod("p").Label("app", "cache").Obj(),
			map[string]int64{"n1": 0, "n2": 0, "n3": 100, "n4": 0}, false},
		{"existing pod's preferred anti-affinity repels",
			[]*corev1.Pod{withPreferred(fixture.Pod("web").Node("n3").Obj(), nil, []corev1.WeightedPodAffinityTerm{weighted(3, zone, "batch")})},
			fixture.Pod("p").Label("app", "batch").Obj(),
			map[string]int64{"n1": 100, "n2": 100, "n3": 0, "n4": 100}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			snap := cache.NewSnapshotFrom(testNodes(), tt.existing)
			p := newPlugin(t, snap, nil)
			state := framework.NewCycleState()
			st := p.PreScore(context.Background(), state, tt.pod, snap.List())
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
			for _, ni := range snap.List() {
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

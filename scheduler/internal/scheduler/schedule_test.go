package scheduler

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/cache"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
	"github.com/coxswain/coxswain/scheduler/internal/framework/plugins"
)

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct {
		pct, nodes, want int32
	}{
		{0, 10, 10},
		{0, 99, 99},
		{0, 100, 100}, // 50% of 100 is 50, raised to the 100 minimum
		{0, 1000, 420},
		{0, 5000, 5000 * 10 / 100},
		{0, 6000, 6000 * 5 / 100},
		{0, 100000, 5000},
		{30, 1000, 300},
		{100, 1000, 1000},
		{1, 1000, 100},
	}
	for _, tt := range tests {
		if got := numFeasibleNodesToFind(tt.pct, tt.nodes); got != tt.want {
			t.Errorf("numFeasibleNodesToFind(%d, %d) = %d, want %d", tt.pct, tt.nodes, got, tt.want)
		}
	}
}

func newTestScheduler(t testing.TB, nodes []*corev1.Node, pods []*corev1.Pod) *Scheduler {
	t.Helper()
	snapshot := cache.NewSnapshotFrom(nodes, pods)
	fwk, err := NewFramework(config.Default().Profiles[0], plugins.NewInTreeRegistry(), 4, framework.NewHandle(snapshot, nil))
	if err != nil {
		t.Fatal(err)
	}
	return &Scheduler{fwk: fwk, snapshot: snapshot, rand: rand.New(rand.NewPCG(1, 2))}
}

func TestSchedulePod(t *testing.T) {
	nodes := []*corev1.Node{
		fixture.Node("small", "2", "4Gi").Obj(),
		fixture.Node("busy", "8", "16Gi").Obj(),
		fixture.Node("free", "8", "16Gi").Obj(),
		fixture.Node("tainted", "64", "128Gi").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
		fixture.Node("cordoned", "64", "128Gi").Unschedulable().Obj(),
	}
	existing := []*corev1.Pod{fixture.Pod("a").Container("6", "8Gi").Node("busy").Obj()}
	tests := []struct {
		name    string
		pod     *corev1.Pod
		want    string
		wantErr string
	}{
		{"least allocated picks the free node", fixture.Pod("p").Container("1", "1Gi").Obj(), "free", ""},
		{"only one fits", fixture.Pod("p").Container("7", "1Gi").Obj(), "free", ""},
		{"nothing fits", fixture.Pod("p").Container("100", "1Gi").Obj(), "",
			"0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable, 3 Insufficient cpu."},
		{"cpu and memory", fixture.Pod("p").Container("100", "100Gi").Obj(), "",
			"0/5 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable, 3 Insufficient cpu, 3 Insufficient memory."},
		{"tolerating pod prefers the big tainted node", fixture.Pod("p").Container("10", "1Gi").Toleration("dedicated", corev1.TolerationOpExists, "", "").Obj(), "tainted", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestScheduler(t, nodes, existing)
			got, err := s.schedulePod(context.Background(), framework.NewCycleState(), tt.pod)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("schedulePod() = %q, %v; want error %q", got, err, tt.wantErr)
				}
				if !isUnschedulable(err) {
					t.Errorf("error %v is not a FitError", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("schedulePod() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestNoNodes(t *testing.T) {
	s := newTestScheduler(t, nil, nil)
	if _, err := s.schedulePod(context.Background(), framework.NewCycleState(), fixture.Pod("p").Container("1", "").Obj()); err != ErrNoNodesAvailable {
		t.Fatalf("schedulePod() error %v, want ErrNoNodesAvailable", err)
	}
}

func TestSamplingRotatesStart(t *testing.T) {
	var nodes []*corev1.Node
	for i := range 300 {
		nodes = append(nodes, fixture.Node(string(rune('a'+i/26))+string(rune('a'+i%26)), "4", "8Gi").Obj())
	}
	s := newTestScheduler(t, nodes, nil)
	pod := fixture.Pod("p").Container("1", "").Obj()
	feasible, _, err := s.findNodesThatFitPod(context.Background(), framework.NewCycleState(), pod)
	if err != nil {
		t.Fatal(err)
	}
	want := int(numFeasibleNodesToFind(0, 300))
	if len(feasible) != want {
		t.Fatalf("%d feasible nodes, want the %d sampled", len(feasible), want)
	}
	if s.nextStartNodeIndex != want {
		t.Errorf("next start %d, want %d", s.nextStartNodeIndex, want)
	}
}

func TestNewFrameworkFromConfig(t *testing.T) {
	cfg, err := config.Parse([]byte(`
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: packer
  plugins:
    filter:
      disabled: [{name: NodePorts}]
    score:
      disabled: [{name: "*"}]
      enabled: [{name: NodeResourcesFit, weight: 5}, {name: TaintToleration}]
  pluginConfig:
  - name: NodeResourcesFit
    args: {scoringStrategy: {type: MostAllocated}}
`))
	if err != nil {
		t.Fatal(err)
	}
	fwk, err := NewFramework(cfg.Profiles[0], plugins.NewInTreeRegistry(), 1, framework.NewHandle(cache.NewSnapshot(), nil))
	if err != nil {
		t.Fatal(err)
	}
	var filters []string
	for _, p := range fwk.FilterPlugins() {
		filters = append(filters, p.Name())
	}
	scores := map[string]int64{}
	for _, p := range fwk.ScorePlugins() {
		scores[p.Name()] = p.Weight
	}
	if diff := cmp.Diff([]string{"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity"}, filters); diff != "" {
		t.Errorf("filters (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int64{"NodeResourcesFit": 5, "TaintToleration": 1}, scores); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}

	for _, bad := range []string{
		"profiles: [{plugins: {filter: {enabled: [{name: NoSuchPlugin}]}}}]",
		"profiles: [{plugins: {score: {enabled: [{name: NodeName}]}}}]",
		"profiles: [{pluginConfig: [{name: NodeResourcesFit, args: {scoringStrategy: {type: Random}}}]}]",
	} {
		cfg, err := config.Parse([]byte("apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n" + bad))
		if err != nil {
			t.Fatalf("%s: %v", bad, err)
		}
		if _, err := NewFramework(cfg.Profiles[0], plugins.NewInTreeRegistry(), 1, framework.NewHandle(cache.NewSnapshot(), nil)); err == nil {
			t.Errorf("NewFramework(%s) succeeded, want an error", bad)
		}
	}
}

package noderesources

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func nodeInfo(n *corev1.Node, pods ...*corev1.Pod) *framework.NodeInfo {
	ni := framework.NewNodeInfo(pods...)
	ni.SetNode(n)
	return ni
}

func TestFitFilter(t *testing.T) {
	gpu := corev1.ResourceName("example.com/gpu")
	tests := []struct {
		name string
		ni   *framework.NodeInfo
		pod  *corev1.Pod
		want []string
	}{
		{"fits", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("1", "1Gi").Obj(), nil},
		{"exactly fits", nodeInfo(fixture.Node("n", "2", "4Gi").Obj(), fixture.Pod("a").Container("1", "2Gi").Obj()), fixture.Pod("p").Container("1", "2Gi").Obj(), nil},
		{"insufficient cpu", nodeInfo(fixture.Node("n", "2", "4Gi").Obj(), fixture.Pod("a").Container("1500m", "").Obj()), fixture.Pod("p").Container("1", "").Obj(), []string{"Insufficient cpu"}},
		{"insufficient cpu and memory", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("3", "5Gi").Obj(), []string{"Insufficient cpu", "Insufficient memory"}},
		{"too many pods", nodeInfo(fixture.Node("n", "2", "4Gi").Allocatable(corev1.ResourcePods, "1").Obj(), fixture.Pod("a").Obj()), fixture.Pod("p").Obj(), []string{"Too many pods"}},
		{"pod without requests fits a full node", nodeInfo(fixture.Node("n", "1", "1Gi").Obj(), fixture.Pod("a").Container("1", "1Gi").Obj()), fixture.Pod("p").Container("", "").Obj(), nil},
		{"init container larger than containers", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("1", "").InitContainer("3", "", false).Obj(), []string{"Insufficient cpu"}},
		{"init container smaller than containers", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("1", "").Container("1", "").InitContainer("1500m", "", false).Obj(), nil},
		{"sidecar adds to containers", nodeInfo(fixture.Node("n", "1500m", "4Gi").Obj()), fixture.Pod("p").Container("1", "").InitContainer("1", "", true).Obj(), []string{"Insufficient cpu"}},
		{"overhead counts", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("1", "1Gi").Overhead("1500m", "10Mi").Obj(), []string{"Insufficient cpu"}},
		{"ephemeral storage", nodeInfo(fixture.Node("n", "2", "4Gi").Allocatable(corev1.ResourceEphemeralStorage, "10Gi").Obj()),
			fixture.Pod("p").Container("1", "").Request(corev1.ResourceEphemeralStorage, "20Gi").Obj(), []string{"Insufficient ephemeral-storage"}},
		{"extended resource missing", nodeInfo(fixture.Node("n", "2", "4Gi").Obj()), fixture.Pod("p").Container("1", "").Request(gpu, "1").Obj(), []string{"Insufficient example.com/gpu"}},
		{"extended resource present", nodeInfo(fixture.Node("n", "2", "4Gi").Allocatable(gpu, "2").Obj()), fixture.Pod("p").Container("1", "").Request(gpu, "2").Obj(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := NewFit(nil)
			if err != nil {
				t.Fatal(err)
			}
			f := pl.(*Fit)
			state := framework.NewCycleState()
			_ = f.PreFilter(context.Background(), state, tt.pod)
			st := f.Filter(context.Background(), state, tt.pod, tt.ni)
			if diff := cmp.Diff(tt.want, st.Reasons()); diff != "" {
				t.Errorf("reasons (-want +got):\n%s", diff)
			}
			if len(tt.want) > 0 && st.Code() != framework.Unschedulable {
				t.Errorf("code %v, want Unschedulable", st.Code())
			}
		})
	}
}

func TestFitIgnoredResources(t *testing.T) {
	pl, err := NewFit([]byte(`{"ignoredResourceGroups":["example.com"]}`))
	if err != nil {
		t.Fatal(err)
	}
	pod := fixture.Pod("p").Container("1", "").Request("example.com/gpu", "1").Obj()
	if st := pl.(*Fit).Filter(context.Background(), framework.NewCycleState(), pod, nodeInfo(fixture.Node("n", "2", "4Gi").Obj())); !st.IsSuccess() {
		t.Fatalf("Filter() = %v, want Success for an ignored resource group", st.Reasons())
	}
}

func score(t *testing.T, p framework.ScorePlugin, pod *corev1.Pod, ni *framework.NodeInfo) int64 {
	t.Helper()
	state := framework.NewCycleState()
	if pf, ok := p.(framework.PreFilterPlugin); ok {
		_ = pf.PreFilter(context.Background(), state, pod)
	}
	if ps, ok := p.(framework.PreScorePlugin); ok {
		if st := ps.PreScore(context.Background(), state, pod, []*framework.NodeInfo{ni}); st.IsSkip() {
			return -1
		}
	}
	s, st := p.Score(context.Background(), state, pod, ni)
	if !st.IsSuccess() {
		t.Fatal(st.Message())
	}
	return s
}

func TestFitScore(t *testing.T) {
	empty := func() *framework.NodeInfo { return nodeInfo(fixture.Node("n", "4", "8Gi").Obj()) }
	half := func() *framework.NodeInfo {
		return nodeInfo(fixture.Node("n", "4", "8Gi").Obj(), fixture.Pod("a").Container("1", "2Gi").Obj())
	}
	pod := fixture.Pod("p").Container("1", "2Gi").Obj()
	tests := []struct {
		name     string
		args     string
		ni       *framework.NodeInfo
		pod      *corev1.Pod
		want     int64
		wantFail bool
	}{
		{"least allocated, empty node", ``, empty(), pod, 75, false},
		{"least allocated, used node", ``, half(), pod, 50, false},
		{"least allocated, pod without requests counts defaults", ``, empty(), fixture.Pod("p").Container("", "").Obj(), 97, false},
		{"most allocated, empty node", `{"scoringStrategy":{"type":"MostAllocated"}}`, empty(), pod, 25, false},
		{"most allocated, used node", `{"scoringStrategy":{"type":"MostAllocated"}}`, half(), pod, 50, false},
		{"weighted cpu only", `{"scoringStrategy":{"type":"LeastAllocated","resources":[{"name":"cpu","weight":1}]}}`, empty(), fixture.Pod("p").Container("2", "1Gi").Obj(), 50, false},
		{"weights", `{"scoringStrategy":{"resources":[{"name":"cpu","weight":3},{"name":"memory","weight":1}]}}`, empty(), fixture.Pod("p").Container("2", "0").Obj(), (50*3 + 100) / 4, false},
		{"unknown strategy", `{"scoringStrategy":{"type":"Random"}}`, empty(), pod, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := NewFit([]byte(tt.args))
			if tt.wantFail {
				if err == nil {
					t.Fatal("NewFit() succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := score(t, pl.(*Fit), tt.pod, tt.ni); got != tt.want {
				t.Errorf("Score() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestBalancedAllocationScore(t *testing.T) {
	tests := []struct {
		name string
		ni   *framework.NodeInfo
		pod  *corev1.Pod
		want int64
	}{
		{"balanced", nodeInfo(fixture.Node("n", "4", "8Gi").Obj()), fixture.Pod("p").Container("2", "4Gi").Obj(), 100},
		{"unbalanced", nodeInfo(fixture.Node("n", "4", "8Gi").Obj()), fixture.Pod("p").Container("1", "1Gi").Obj(), 93},
		{"existing pods count", nodeInfo(fixture.Node("n", "4", "8Gi").Obj(), fixture.Pod("a").Container("2", "").Obj()), fixture.Pod("p").Container("", "4Gi").Obj(), 100},
		{"over capacity is capped", nodeInfo(fixture.Node("n", "4", "8Gi").Obj()), fixture.Pod("p").Container("8", "0").Obj(), 50},
		{"no requests: skipped", nodeInfo(fixture.Node("n", "4", "8Gi").Obj()), fixture.Pod("p").Container("", "").Obj(), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl, err := NewBalancedAllocation(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := score(t, pl.(*BalancedAllocation), tt.pod, tt.ni); got != tt.want {
				t.Errorf("Score() = %d, want %d", got, tt.want)
			}
		})
	}
}

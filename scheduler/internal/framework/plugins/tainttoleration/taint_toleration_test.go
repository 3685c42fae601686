package tainttoleration

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name    string
		node    *corev1.Node
		pod     *corev1.Pod
		want    framework.Code
		wantMsg string
	}{
		{"no taints", fixture.Node("n", "1", "1Gi").Obj(), fixture.Pod("p").Obj(), framework.Success, ""},
		{"untolerated NoSchedule", fixture.Node("n", "1", "1Gi").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
			fixture.Pod("p").Obj(), framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {dedicated: gpu}"},
		{"untolerated NoExecute", fixture.Node("n", "1", "1Gi").Taint("k", "", corev1.TaintEffectNoExecute).Obj(),
			fixture.Pod("p").Obj(), framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {k: }"},
		{"PreferNoSchedule does not filter", fixture.Node("n", "1", "1Gi").Taint("k", "v", corev1.TaintEffectPreferNoSchedule).Obj(),
			fixture.Pod("p").Obj(), framework.Success, ""},
		{"tolerated by Equal", fixture.Node("n", "1", "1Gi").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
			fixture.Pod("p").Toleration("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoSchedule).Obj(), framework.Success, ""},
		{"Equal with another value", fixture.Node("n", "1", "1Gi").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
			fixture.Pod("p").Toleration("dedicated", corev1.TolerationOpEqual, "cpu", "").Obj(), framework.UnschedulableAndUnresolvable, "node(s) had untolerated taint {dedicated: gpu}"},
		{"tolerated by Exists with empty key", fixture.Node("n", "1", "1Gi").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj(),
			fixture.Pod("p").Toleration("", corev1.TolerationOpExists, "", "").Obj(), framework.Success, ""},
		{"Gt numeric", fixture.Node("n", "1", "1Gi").Taint("level", "5", corev1.TaintEffectNoSchedule).Obj(),
			fixture.Pod("p").Toleration("level", corev1.TolerationOpGt, "3", corev1.TaintEffectNoSchedule).Obj(), framework.Success, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := framework.NewNodeInfo()
			ni.SetNode(tt.node)
			st := Plugin{}.Filter(context.Background(), framework.NewCycleState(), tt.pod, ni)
			if st.Code() != tt.want || st.Message() != tt.wantMsg {
				t.Fatalf("Filter() = %v %q, want %v %q", st.Code(), st.Message(), tt.want, tt.wantMsg)
			}
		})
	}
}

func TestScore(t *testing.T) {
	nodes := []*corev1.Node{
		fixture.Node("none", "1", "1Gi").Obj(),
		fixture.Node("one", "1", "1Gi").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
		fixture.Node("two", "1", "1Gi").Taint("a", "1", corev1.TaintEffectPreferNoSchedule).Taint("b", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
		fixture.Node("tolerated", "1", "1Gi").Taint("c", "1", corev1.TaintEffectPreferNoSchedule).Obj(),
	}
	pod := fixture.Pod("p").Toleration("c", corev1.TolerationOpExists, "", corev1.TaintEffectPreferNoSchedule).Obj()
	p := Plugin{}
	state := framework.NewCycleState()
	var infos []*framework.NodeInfo
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		infos = append(infos, ni)
	}
	_ = p.PreScore(context.Background(), state, pod, infos)
	var scores framework.NodeScoreList
	for _, ni := range infos {
		s, st := p.Score(context.Background(), state, pod, ni)
		if !st.IsSuccess() {
			t.Fatal(st.Message())
		}
		scores = append(scores, framework.NodeScore{Name: ni.Node().Name, Score: s})
	}
	_ = p.NormalizeScore(context.Background(), state, pod, scores)
	want := framework.NodeScoreList{{Name: "none", Score: 100}, {Name: "one", Score: 50}, {Name: "two", Score: 0}, {Name: "tolerated", Score: 100}}
	if diff := cmp.Diff(want, scores); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
}

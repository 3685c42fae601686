package nodeaffinity

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func req(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

func TestFilter(t *testing.T) {
	node := fixture.Node("n1", "1", "1Gi").Label("zone", "a").Label("disk", "ssd").Label("gen", "5").Obj()
	tests := []struct {
		name string
		pod  *corev1.Pod
		want framework.Code
	}{
		{"nothing required", fixture.Pod("p").Obj(), framework.Success},
		{"nodeSelector matches", fixture.Pod("p").NodeSelector(map[string]string{"zone": "a"}).Obj(), framework.Success},
		{"nodeSelector mismatch", fixture.Pod("p").NodeSelector(map[string]string{"zone": "b"}).Obj(), framework.UnschedulableAndUnresolvable},
		{"nodeSelector missing label", fixture.Pod("p").NodeSelector(map[string]string{"gpu": "yes"}).Obj(), framework.UnschedulableAndUnresolvable},
		{"In", fixture.Pod("p").RequiredTerm(req("zone", corev1.NodeSelectorOpIn, "a", "b")).Obj(), framework.Success},
		{"NotIn", fixture.Pod("p").RequiredTerm(req("zone", corev1.NodeSelectorOpNotIn, "a")).Obj(), framework.UnschedulableAndUnresolvable},
		{"Exists", fixture.Pod("p").RequiredTerm(req("disk", corev1.NodeSelectorOpExists)).Obj(), framework.Success},
		{"DoesNotExist", fixture.Pod("p").RequiredTerm(req("disk", corev1.NodeSelectorOpDoesNotExist)).Obj(), framework.UnschedulableAndUnresolvable},
		{"Gt", fixture.Pod("p").RequiredTerm(req("gen", corev1.NodeSelectorOpGt, "4")).Obj(), framework.Success},
		{"Lt", fixture.Pod("p").RequiredTerm(req("gen", corev1.NodeSelectorOpLt, "4")).Obj(), framework.UnschedulableAndUnresolvable},
		{"expressions of a term are ANDed", fixture.Pod("p").RequiredTerm(req("zone", corev1.NodeSelectorOpIn, "a"), req("disk", corev1.NodeSelectorOpIn, "hdd")).Obj(), framework.UnschedulableAndUnresolvable},
		{"terms are ORed", fixture.Pod("p").RequiredTerm(req("zone", corev1.NodeSelectorOpIn, "b")).RequiredTerm(req("disk", corev1.NodeSelectorOpIn, "ssd")).Obj(), framework.Success},
		{"selector and affinity both needed", fixture.Pod("p").NodeSelector(map[string]string{"zone": "b"}).RequiredTerm(req("disk", corev1.NodeSelectorOpIn, "ssd")).Obj(), framework.UnschedulableAndUnresolvable},
		{"empty term matches nothing", fixture.Pod("p").RequiredTerm().Obj(), framework.UnschedulableAndUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := framework.NewNodeInfo()
			ni.SetNode(node)
			state := framework.NewCycleState()
			p := Plugin{}
			_ = p.PreFilter(context.Background(), state, tt.pod)
			st := p.Filter(context.Background(), state, tt.pod, ni)
			if st.Code() != tt.want {
				t.Fatalf("Filter() = %v, want %v", st.Code(), tt.want)
			}
			if !st.IsSuccess() && st.Message() != ErrReasonPod {
				t.Errorf("message %q, want %q", st.Message(), ErrReasonPod)
			}
		})
	}
}

func TestMatchFields(t *testing.T) {
	pod := fixture.Pod("p").Obj()
	pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{req("metadata.name", corev1.NodeSelectorOpIn, "n2")}}},
	}}}
	r := GetRequiredNodeAffinity(pod)
	if r.Match(fixture.Node("n1", "1", "1Gi").Obj()) || !r.Match(fixture.Node("n2", "1", "1Gi").Obj()) {
		t.Fatal("matchFields metadata.name In [n2] should match n2 only")
	}
}

func TestScore(t *testing.T) {
	nodes := []*corev1.Node{
		fixture.Node("both", "1", "1Gi").Label("zone", "a").Label("disk", "ssd").Obj(),
		fixture.Node("zone", "1", "1Gi").Label("zone", "a").Obj(),
		fixture.Node("disk", "1", "1Gi").Label("disk", "ssd").Obj(),
		fixture.Node("none", "1", "1Gi").Obj(),
	}
	pod := fixture.Pod("p").PreferredTerm(3, req("zone", corev1.NodeSelectorOpIn, "a")).PreferredTerm(1, req("disk", corev1.NodeSelectorOpIn, "ssd")).Obj()
	p := Plugin{}
	state := framework.NewCycleState()
	if st := p.PreScore(context.Background(), state, pod, nil); !st.IsSuccess() {
		t.Fatalf("PreScore() = %v", st.Code())
	}
	var scores framework.NodeScoreList
	for _, n := range nodes {
		ni := framework.NewNodeInfo()
		ni.SetNode(n)
		s, _ := p.Score(context.Background(), state, pod, ni)
		scores = append(scores, framework.NodeScore{Name: n.Name, Score: s})
	}
	_ = p.NormalizeScore(context.Background(), state, pod, scores)
	want := framework.NodeScoreList{{Name: "both", Score: 100}, {Name: "zone", Score: 75}, {Name: "disk", Score: 25}, {Name: "none", Score: 0}}
	if diff := cmp.Diff(want, scores); diff != "" {
		t.Errorf("scores (-want +got):\n%s", diff)
	}
	if st := p.PreScore(context.Background(), framework.NewCycleState(), fixture.Pod("q").Obj(), nil); !st.IsSkip() {
		t.Errorf("PreScore() without preferred terms = %v, want Skip", st.Code())
	}
}

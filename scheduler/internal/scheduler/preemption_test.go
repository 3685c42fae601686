package scheduler

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func TestPreemptionCandidates(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	nodes := []*corev1.Node{
		fixture.Node("n1", "2", "4Gi").Obj(),
		fixture.Node("n2", "2", "4Gi").Obj(),
		fixture.Node("n3", "2", "4Gi").Obj(),
	}
	existing := []*corev1.Pod{
		fixture.Pod("n1-low").Container("1", "").Priority(1).Created(t0).Node("n1").Obj(),
		fixture.Pod("n1-mid").Container("1", "").Priority(5).Created(t0).Node("n1").Obj(),
		fixture.Pod("n2-high").Container("2", "").Priority(10).Created(t0).Node("n2").Obj(),
		fixture.Pod("n3-low-old").Container("1", "").Priority(1).Created(t0).Node("n3").Obj(),
		fixture.Pod("n3-low-new").Container("1", "").Priority(1).Created(t1).Node("n3").Obj(),
	}
	tests := []struct {
		name        string
		pod         *corev1.Pod
		wantVictims map[string][]string
		wantNode    string
	}{
		{"whole node needed: the node with the least important victims",
			fixture.Pod("p").Container("2", "").Priority(8).Obj(),
			map[string][]string{"n1": {"n1-mid", "n1-low"}, "n3": {"n3-low-old", "n3-low-new"}}, "n3"},
		{"one cpu: the most important pods are reprieved; ties go to the latest started victim",
			fixture.Pod("p").Container("1", "").Priority(8).Obj(),
			map[string][]string{"n1": {"n1-low"}, "n3": {"n3-low-new"}}, "n3"},
		{"equal priority is never a victim",
			fixture.Pod("p").Container("2", "").Priority(1).Obj(), map[string][]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestScheduler(t, nodes, existing)
			state := framework.NewCycleState()
			_, err := s.schedulePod(context.Background(), state, tt.pod)
			fe, ok := err.(*FitError)
			if !ok {
				t.Fatalf("schedulePod error %v, want a FitError", err)
			}
			cands := s.findCandidates(context.Background(), state, tt.pod, fe.Diagnosis)
			got := map[string][]string{}
			for _, c := range cands {
				for _, v := range c.victims {
					got[c.node] = append(got[c.node], v.Name)
				}
			}
			if diff := cmp.Diff(tt.wantVictims, got); diff != "" {
				t.Errorf("victims (-want +got):\n%s", diff)
			}
			best := s.pickOneNode(cands)
			gotNode := ""
			if best != nil {
				gotNode = best.node
			}
			if gotNode != tt.wantNode {
				t.Errorf("picked %q, want %q", gotNode, tt.wantNode)
			}
		})
	}
}

func TestPreemptNever(t *testing.T) {
	s := newTestScheduler(t, []*corev1.Node{fixture.Node("n1", "1", "1Gi").Obj()},
		[]*corev1.Pod{fixture.Pod("low").Container("1", "").Priority(1).Node("n1").Obj()})
	pod := fixture.Pod("p").Container("1", "").Priority(100).Obj()
	never := corev1.PreemptNever
	pod.Spec.PreemptionPolicy = &never
	state := framework.NewCycleState()
	_, err := s.schedulePod(context.Background(), state, pod)
	fe, ok := err.(*FitError)
	if !ok {
		t.Fatalf("schedulePod error %v, want a FitError", err)
	}
	node, err := s.preempt(context.Background(), state, pod, fe, nil)
	if err != nil || node != "" {
		t.Errorf("preempt = %q, %v; want no nomination", node, err)
	}
}

func TestPriorityResolution(t *testing.T) {
	idx := informer.NewIndexer(nil)
	for _, pc := range []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000},
		{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Value: 7, GlobalDefault: true},
	} {
		if err := idx.Add(pc); err != nil {
			t.Fatal(err)
		}
	}
	r := &priorityResolver{classes: informer.NewLister[*schedulingv1.PriorityClass](idx)}
	withClass := func(name string) *corev1.Pod {
		p := fixture.Pod("p").Obj()
		p.Spec.PriorityClassName = name
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want int32
	}{
		{"spec.priority wins", fixture.Pod("p").Priority(3).Obj(), 3},
		{"class", withClass("high"), 1000},
		{"unknown class", withClass("nope"), 0},
		{"global default", fixture.Pod("p").Obj(), 7},
	} {
		if got := r.priority(tc.pod); got != tc.want {
			t.Errorf("%s: priority = %d, want %d", tc.name, got, tc.want)
		}
		if got := r.withPriority(tc.pod); got.Spec.Priority == nil && tc.want != 0 || got.Spec.Priority != nil && *got.Spec.Priority != tc.want {
			t.Errorf("%s: withPriority did not set spec.priority %d", tc.name, tc.want)
		}
	}
}

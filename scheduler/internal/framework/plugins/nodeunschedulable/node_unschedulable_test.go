package nodeunschedulable

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name string
		node *corev1.Node
		pod  *corev1.Pod
		want framework.Code
	}{
		{"schedulable node", fixture.Node("n", "1", "1Gi").Obj(), fixture.Pod("p").Obj(), framework.Success},
		{"unschedulable node", fixture.Node("n", "1", "1Gi").Unschedulable().Obj(), fixture.Pod("p").Obj(), framework.UnschedulableAndUnresolvable},
		{"tolerated", fixture.Node("n", "1", "1Gi").Unschedulable().Obj(),
			fixture.Pod("p").Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoSchedule).Obj(), framework.Success},
		{"toleration of another effect", fixture.Node("n", "1", "1Gi").Unschedulable().Obj(),
			fixture.Pod("p").Toleration(corev1.TaintNodeUnschedulable, corev1.TolerationOpExists, "", corev1.TaintEffectNoExecute).Obj(), framework.UnschedulableAndUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := framework.NewNodeInfo()
			ni.SetNode(tt.node)
			st := Plugin{}.Filter(context.Background(), framework.NewCycleState(), tt.pod, ni)
			if st.Code() != tt.want {
				t.Fatalf("Filter() = %v (%s), want %v", st.Code(), st.Message(), tt.want)
			}
			if !st.IsSuccess() && st.Message() != ErrReasonUnschedulable {
				t.Errorf("message %q, want %q", st.Message(), ErrReasonUnschedulable)
			}
		})
	}
}

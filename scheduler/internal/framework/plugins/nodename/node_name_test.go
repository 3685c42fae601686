package nodename

import (
	"context"
	"testing"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name     string
		nodeName string
		want     framework.Code
	}{
		{"no node name", "", framework.Success},
		{"same node", "n1", framework.Success},
		{"other node", "n2", framework.UnschedulableAndUnresolvable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := framework.NewNodeInfo()
			ni.SetNode(fixture.Node("n1", "1", "1Gi").Obj())
			st := Plugin{}.Filter(context.Background(), framework.NewCycleState(), fixture.Pod("p").Node(tt.nodeName).Obj(), ni)
			if st.Code() != tt.want {
				t.Fatalf("Filter() = %v, want %v", st.Code(), tt.want)
			}
			if !st.IsSuccess() && st.Message() != ErrReason {
				t.Errorf("message %q, want %q", st.Message(), ErrReason)
			}
		})
	}
}

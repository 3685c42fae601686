package nodeports

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func TestFilter(t *testing.T) {
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	tests := []struct {
		name     string
		existing []*corev1.Pod
		pod      *corev1.Pod
		want     framework.Code
	}{
		{"no ports", []*corev1.Pod{fixture.Pod("a").HostPort("", tcp, 80).Obj()}, fixture.Pod("p").Obj(), framework.Success},
		{"free port", []*corev1.Pod{fixture.Pod("a").HostPort("", tcp, 80).Obj()}, fixture.Pod("p").HostPort("", tcp, 81).Obj(), framework.Success},
		{"same port other protocol", []*corev1.Pod{fixture.Pod("a").HostPort("", tcp, 80).Obj()}, fixture.Pod("p").HostPort("", udp, 80).Obj(), framework.Success},
		{"same port", []*corev1.Pod{fixture.Pod("a").HostPort("", tcp, 80).Obj()}, fixture.Pod("p").HostPort("", "", 80).Obj(), framework.Unschedulable},
		{"different IPs", []*corev1.Pod{fixture.Pod("a").HostPort("10.0.0.1", tcp, 80).Obj()}, fixture.Pod("p").HostPort("10.0.0.2", tcp, 80).Obj(), framework.Success},
		{"wildcard against IP", []*corev1.Pod{fixture.Pod("a").HostPort("10.0.0.1", tcp, 80).Obj()}, fixture.Pod("p").HostPort("0.0.0.0", tcp, 80).Obj(), framework.Unschedulable},
		{"IP against wildcard", []*corev1.Pod{fixture.Pod("a").HostPort("", tcp, 80).Obj()}, fixture.Pod("p").HostPort("10.0.0.2", tcp, 80).Obj(), framework.Unschedulable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ni := framework.NewNodeInfo(tt.existing...)
			ni.SetNode(fixture.Node("n", "1", "1Gi").Obj())
			state := framework.NewCycleState()
			p := Plugin{}
			_ = p.PreFilter(context.Background(), state, tt.pod)
			st := p.Filter(context.Background(), state, tt.pod, ni)
			if st.Code() != tt.want {
				t.Fatalf("Filter() = %v, want %v", st.Code(), tt.want)
			}
			if !st.IsSuccess() && st.Message() != ErrReason {
				t.Errorf("message %q, want %q", st.Message(), ErrReason)
			}
		})
	}
}

func TestRemovedPodFreesPort(t *testing.T) {
	a := fixture.Pod("a").HostPort("", corev1.ProtocolTCP, 80).Obj()
	ni := framework.NewNodeInfo(a)
	ni.SetNode(fixture.Node("n", "1", "1Gi").Obj())
	ni.RemovePod(a)
	pod := fixture.Pod("p").HostPort("", corev1.ProtocolTCP, 80).Obj()
	if st := (Plugin{}).Filter(context.Background(), framework.NewCycleState(), pod, ni); !st.IsSuccess() {
		t.Fatalf("Filter() = %v after the port's pod was removed, want Success", st.Code())
	}
}

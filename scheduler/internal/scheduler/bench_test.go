package scheduler

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// BenchmarkSchedulePodAntiAffinity measures one scheduling attempt of a
// pod with required anti-affinity and a zone spread constraint on 5,000
// nodes holding 5,000 pods, half of them with anti-affinity.
func BenchmarkSchedulePodAntiAffinity(b *testing.B) {
	const numNodes, numPods = 5000, 5000
	nodes := make([]*corev1.Node, numNodes)
	for i := range nodes {
		name := fmt.Sprintf("node-%d", i)
		nodes[i] = fixture.Node(name, "32", "64Gi").Label(corev1.LabelHostname, name).Label(corev1.LabelTopologyZone, fmt.Sprintf("zone-%d", i%3)).Obj()
	}
	anti := func(p *corev1.Pod, app string) *corev1.Pod {
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}, TopologyKey: corev1.LabelHostname,
			}},
		}}
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		}}
		return p
	}
	pods := make([]*corev1.Pod, numPods)
	for i := range pods {
		app := fmt.Sprintf("app-%d", i%50)
		p := fixture.Pod(fmt.Sprintf("pod-%d", i)).Container("100m", "100Mi").Label("app", app).Node(nodes[i%numNodes].Name).Obj()
		if i%2 == 0 {
			p = anti(p, app)
		}
		pods[i] = p
	}
	s := newTestScheduler(b, nodes, pods)
	pod := anti(fixture.Pod("new").Container("100m", "100Mi").Label("app", "app-0").Obj(), "app-0")
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.schedulePod(context.Background(), framework.NewCycleState(), pod); err != nil {
			b.Fatal(err)
		}
	}
}

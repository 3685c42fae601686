package app_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
)

// TestInterPodAffinityAndSpread places pods with required anti-affinity
// one per node, reports the one too many as unschedulable, and spreads
// pods with a DoNotSchedule constraint evenly over zones.
func TestInterPodAffinityAndSpread(t *testing.T) {
	env := harness.Start(t)
	c := env.Client
	zoneOf := map[string]string{"n1": "a", "n2": "a", "n3": "b", "n4": "b"}
	for _, n := range []string{"n1", "n2", "n3", "n4"} {
		createNode(t, c, fixture.Node(n, "8", "16Gi").Label(corev1.LabelHostname, n).Label(corev1.LabelTopologyZone, zoneOf[n]).Obj())
	}
	startScheduler(t, env, nil)

	web := func(name string) *corev1.Pod {
		p := fixture.Pod(name).Container("100m", "100Mi").Label("app", "web").Obj()
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				TopologyKey:   corev1.LabelHostname,
			}},
		}}
		return p
	}
	for i := range 4 {
		createPod(t, c, web(fmt.Sprintf("web-%d", i)))
	}
	for node, n := range countPerNode(t, c, 4) {
		if n != 1 {
			t.Errorf("%d web pods on %s, want 1 per node", n, node)
		}
	}
	createPod(t, c, web("web-extra"))
	msg := waitUnschedulable(t, c, "web-extra")
	if want := "0/4 nodes are available: 4 node(s) didn't satisfy existing pods anti-affinity rules."; msg != want {
		t.Errorf("message %q, want %q", msg, want)
	}
	if _, err := client.For[*corev1.Pod](c).Delete(context.Background(), "default", "web-extra", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	for i := range 6 {
		p := fixture.Pod(fmt.Sprintf("batch-%d", i)).Container("100m", "100Mi").Label("app", "batch").Obj()
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}},
		}}
		createPod(t, c, p)
	}
	countPerNode(t, c, 10)
	pods, _, err := client.For[*corev1.Pod](c).List(context.Background(), "default", metav1.ListOptions{LabelSelector: "app=batch"})
	if err != nil {
		t.Fatal(err)
	}
	perZone := map[string]int{}
	for _, p := range pods {
		perZone[zoneOf[p.Spec.NodeName]]++
	}
	if perZone["a"] != 3 || perZone["b"] != 3 {
		t.Errorf("batch pods per zone %v, want 3 and 3", perZone)
	}
}

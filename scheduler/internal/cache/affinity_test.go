package cache

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func antiAffine(p *corev1.Pod) *corev1.Pod {
	p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "x"}}, TopologyKey: corev1.LabelHostname,
		}},
	}}
	return p
}

func preferAffine(p *corev1.Pod) *corev1.Pod {
	p.Spec.Affinity = &corev1.Affinity{PodAffinity: &corev1.PodAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 1, PodAffinityTerm: corev1.PodAffinityTerm{
			LabelSelector: &metav1.LabelSelector{}, TopologyKey: corev1.LabelHostname,
		}}},
	}}
	return p
}

func infoNames(infos []*framework.NodeInfo) []string {
	out := []string{}
	for _, ni := range infos {
		out = append(out, ni.Node().Name)
	}
	return out
}

// TestAffinityLists checks that the snapshot's lists of nodes with pods
// with affinity follow incremental updates.
func TestAffinityLists(t *testing.T) {
	c := New(nil)
	for _, n := range []string{"a", "b", "c"} {
		c.AddNode(fixture.Node(n, "1", "1Gi").Obj())
	}
	s := NewSnapshot()
	check := func(step string, wantAffinity, wantAnti []string) {
		t.Helper()
		c.UpdateSnapshot(s)
		if diff := cmp.Diff(wantAffinity, infoNames(s.HavePodsWithAffinityList())); diff != "" {
			t.Errorf("%s: HavePodsWithAffinityList (-want +got):\n%s", step, diff)
		}
		if diff := cmp.Diff(wantAnti, infoNames(s.HavePodsWithRequiredAntiAffinityList())); diff != "" {
			t.Errorf("%s: HavePodsWithRequiredAntiAffinityList (-want +got):\n%s", step, diff)
		}
	}
	check("empty", []string{}, []string{})
	anti := antiAffine(fixture.Pod("anti").Node("a").Obj())
	c.AddPod(anti)
	c.AddPod(fixture.Pod("plain").Node("b").Obj())
	check("anti on a", []string{"a"}, []string{"a"})
	pref := preferAffine(fixture.Pod("pref").Node("c").Obj())
	if err := c.AssumePod(pref); err != nil {
		t.Fatal(err)
	}
	check("preferred assumed on c", []string{"a", "c"}, []string{"a"})
	c.RemovePod(anti)
	check("anti removed", []string{"c"}, []string{})
	if err := c.ForgetPod(pref); err != nil {
		t.Fatal(err)
	}
	check("pref forgotten", []string{}, []string{})
}

func TestImageNumNodes(t *testing.T) {
	img := func(n *corev1.Node, names ...string) *corev1.Node {
		n.Status.Images = []corev1.ContainerImage{{Names: names, SizeBytes: 1}}
		return n
	}
	c := New(nil)
	s := NewSnapshot()
	c.AddNode(img(fixture.Node("a", "1", "1Gi").Obj(), "nginx:1", "nginx@sha256:0"))
	c.AddNode(img(fixture.Node("b", "1", "1Gi").Obj(), "nginx:1"))
	c.UpdateSnapshot(s)
	if got := s.ImageNumNodes("nginx:1"); got != 2 {
		t.Errorf("ImageNumNodes(nginx:1) = %d, want 2", got)
	}
	c.UpdateNode(nil, img(fixture.Node("b", "1", "1Gi").Obj(), "redis"))
	c.UpdateSnapshot(s)
	if got, got2 := s.ImageNumNodes("nginx:1"), s.ImageNumNodes("redis:latest"); got != 1 || got2 != 1 {
		t.Errorf("after update: nginx:1 on %d, redis:latest on %d nodes, want 1 and 1", got, got2)
	}
	c.RemoveNode(fixture.Node("a", "1", "1Gi").Obj())
	c.UpdateSnapshot(s)
	if got := s.ImageNumNodes("nginx:1"); got != 0 {
		t.Errorf("after removal: nginx:1 on %d nodes, want 0", got)
	}
}

// TestLabelIndex checks the snapshot's pod label index through
// incremental updates, and CandidateNodes over it.
func TestLabelIndex(t *testing.T) {
	c := New(nil)
	for _, n := range []string{"a", "b"} {
		c.AddNode(fixture.Node(n, "1", "1Gi").Obj())
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	web := framework.PodLabel{Namespace: "default", Key: "app", Value: "web"}
	check := func(step string, want map[string]int) {
		t.Helper()
		c.UpdateSnapshot(s)
		got := s.NodesWithPodLabel(web)
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: NodesWithPodLabel (-want +got):\n%s", step, diff)
		}
	}
	w1 := fixture.Pod("w1").Label("app", "web").Node("a").Obj()
	w2 := fixture.Pod("w2").Label("app", "web").Node("a").Obj()
	w3 := fixture.Pod("w3").Label("app", "web").Node("b").Obj()
	c.AddPod(w1)
	c.AddPod(w2)
	c.AddPod(fixture.Pod("other-ns").Namespace("x").Label("app", "web").Node("b").Obj())
	check("two on a", map[string]int{"a": 2})
	if err := c.AssumePod(w3); err != nil {
		t.Fatal(err)
	}
	check("assumed on b", map[string]int{"a": 2, "b": 1})
	c.RemovePod(w1)
	c.RemovePod(w2)
	check("removed from a", map[string]int{"b": 1})
	c.RemoveNode(fixture.Node("b", "1", "1Gi").Obj())
	check("node b removed", nil)

	c.AddNode(fixture.Node("b", "1", "1Gi").Obj())
	c.UpdateSnapshot(s)
	sel := labelsSelector(t, "app in (web, db)")
	nodes, ok := framework.CandidateNodes(s, []string{"default", "x"}, sel)
	if !ok {
		t.Fatal("CandidateNodes: selector with In not indexed")
	}
	if diff := cmp.Diff(map[string]int{"b": 2}, nodes); diff != "" {
		t.Errorf("CandidateNodes (-want +got):\n%s", diff)
	}
	if _, ok := framework.CandidateNodes(s, []string{"default"}, labelsSelector(t, "app notin (web)")); ok {
		t.Error("CandidateNodes indexed a selector with no equality requirement")
	}
}

func labelsSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

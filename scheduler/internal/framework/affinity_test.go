package framework

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func TestTermMatchMemo(t *testing.T) {
	owner := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "a"}}
	term := func(sel *metav1.LabelSelector, nsSel *metav1.LabelSelector, ns ...string) AffinityTerm {
		t.Helper()
		at, err := NewAffinityTerm(owner, &corev1.PodAffinityTerm{LabelSelector: sel, NamespaceSelector: nsSel, Namespaces: ns, TopologyKey: "zone"})
		if err != nil {
			t.Fatal(err)
		}
		return at
	}
	web := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}
	terms := []AffinityTerm{
		term(web, nil),                     // namespace a, app=web
		term(web, nil),                     // the same again: shares the id
		term(web, nil, "b"),                // namespace b
		term(nil, nil),                     // nil selector: nothing
		term(&metav1.LabelSelector{}, nil), // empty selector: everything in a
		term(web, &metav1.LabelSelector{}), // every namespace
		term(web, &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}), // namespaces labelled team=x
	}
	if terms[0].id == 0 || terms[0].id != terms[1].id {
		t.Fatalf("equal terms have ids %d and %d, want one shared non-zero id", terms[0].id, terms[1].id)
	}
	seen := map[uint32]int{}
	for i, tm := range terms[1:] {
		if j, dup := seen[tm.id]; dup {
			t.Errorf("terms %d and %d differ but share id %d", j, i+1, tm.id)
		}
		seen[tm.id] = i + 1
	}
	for _, pod := range []*corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Labels: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Labels: map[string]string{"app": "web"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Labels: map[string]string{"app": "db"}}},
	} {
		for _, nsLabels := range []labels.Set{nil, {"team": "x"}} {
			memo := NewTermMatchMemo(pod, nsLabels)
			for round := range 2 { // the second round answers from the memo
				for i := range terms {
					if got, want := memo.Matches(&terms[i]), terms[i].Matches(pod, nsLabels); got != want {
						t.Errorf("pod %s/%v ns labels %v term %d round %d: memo %v, Matches %v", pod.Namespace, pod.Labels, nsLabels, i, round, got, want)
					}
				}
			}
		}
	}
}

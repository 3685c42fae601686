package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

// TestIncrementalIndexesMatchFull checks that the indexes a snapshot keeps
// node by node (pod labels, anti-affinity terms, the lists of nodes with
// affinity pods) equal those of a snapshot built from scratch, after
// random assumes, confirmations, removals and node changes.
func TestIncrementalIndexesMatchFull(t *testing.T) {
	// Few nodes hold many pods each (the re-index compares the pods of
	// two versions of a node differently above 32 pods).
	for _, numNodes := range []int{3, 20} {
		t.Run(fmt.Sprint(numNodes, " nodes"), func(t *testing.T) { testIncrementalIndexes(t, numNodes) })
	}
}

func testIncrementalIndexes(t *testing.T, numNodes int) {
	rng := rand.New(rand.NewPCG(1, 2))
	c := New(nil)
	for i := range numNodes {
		c.AddNode(fixture.Node(fmt.Sprintf("n%d", i), "64", "64Gi").Obj())
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	var live []*corev1.Pod
	for step := range 600 {
		switch r := rng.IntN(10); {
		case r < 5 || len(live) == 0:
			p := fixture.Pod(fmt.Sprintf("p%d", step)).Label("app", fmt.Sprintf("a%d", rng.IntN(4))).Node(fmt.Sprintf("n%d", rng.IntN(numNodes))).Obj()
			switch rng.IntN(3) {
			case 0:
				p = antiAffine(p)
			case 1:
				p = preferAffine(p)
			}
			if rng.IntN(2) == 0 {
				if err := c.AssumePod(p); err != nil {
					t.Fatal(err)
				}
			} else {
				c.AddPod(p)
			}
			live = append(live, p)
		case r < 7:
			// The informer confirms a pod, with a changed label.
			p := live[rng.IntN(len(live))].DeepCopy()
			p.Labels["app"] = fmt.Sprintf("a%d", rng.IntN(4))
			if rng.IntN(3) == 0 {
				now := metav1.Now()
				p.DeletionTimestamp = &now
			}
			c.AddPod(p)
		case r < 9:
			i := rng.IntN(len(live))
			c.RemovePod(live[i])
			live = slices.Delete(live, i, i+1)
		default:
			n := fixture.Node(fmt.Sprintf("n%d", rng.IntN(numNodes)), "64", "64Gi").Label("step", fmt.Sprint(step)).Obj()
			c.UpdateNode(nil, n)
		}
		if rng.IntN(3) > 0 {
			continue
		}
		c.UpdateSnapshot(s)
		// A snapshot the cache did not update last is rebuilt in full
		// (and s, updated at the same generation, stays current).
		full := NewSnapshot()
		full.generation = -1
		c.UpdateSnapshot(full)
		if diff := cmp.Diff(full.labelNodes, s.labelNodes); diff != "" {
			t.Fatalf("step %d: label index (-full +incremental):\n%s", step, diff)
		}
		if diff := cmp.Diff(full.terminatingLabelNodes, s.terminatingLabelNodes, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("step %d: terminating label index (-full +incremental):\n%s", step, diff)
		}
		if diff := cmp.Diff(termNodes(full), termNodes(s)); diff != "" {
			t.Fatalf("step %d: anti-affinity term index (-full +incremental):\n%s", step, diff)
		}
		for _, l := range []struct {
			name       string
			full, incr []*framework.NodeInfo
		}{
			{"affinity", full.HavePodsWithAffinityList(), s.HavePodsWithAffinityList()},
			{"anti", full.HavePodsWithRequiredAntiAffinityList(), s.HavePodsWithRequiredAntiAffinityList()},
			{"scoring", full.HavePodsWithScoringAffinityList(), s.HavePodsWithScoringAffinityList()},
		} {
			want, got := infoNames(l.full), infoNames(l.incr)
			slices.Sort(want)
			slices.Sort(got)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("step %d: %s list (-full +incremental):\n%s", step, l.name, diff)
			}
		}
	}
}

func termNodes(s *Snapshot) map[framework.TermKey]map[string]int {
	terms, ok := s.RequiredAntiAffinityTerms()
	if !ok {
		return nil
	}
	out := map[framework.TermKey]map[string]int{}
	for k, e := range terms {
		out[k] = e.Nodes
	}
	return out
}

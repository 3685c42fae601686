package cache

import (
	"maps"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/coxswain/coxswain/scheduler/internal/fixture"
	"github.com/coxswain/coxswain/scheduler/internal/framework"
)

func requested(t *testing.T, s *Snapshot, node string) int64 {
	t.Helper()
	ni, ok := s.Get(node)
	if !ok {
		t.Fatalf("node %s not in the snapshot", node)
	}
	return ni.Requested.MilliCPU
}

func TestAssumeConfirmForget(t *testing.T) {
	c := New(nil)
	c.AddNode(fixture.Node("n1", "4", "8Gi").Obj())
	c.AddNode(fixture.Node("n2", "4", "8Gi").Obj())
	s := NewSnapshot()

	assumed := fixture.Pod("p").Container("1", "").Node("n1").Obj()
	if err := c.AssumePod(assumed); err != nil {
		t.Fatal(err)
	}
	if err := c.AssumePod(assumed); err == nil {
		t.Error("assuming a pod twice succeeded")
	}
	c.UpdateSnapshot(s)
	if got := requested(t, s, "n1"); got != 1000 {
		t.Fatalf("n1 requested %dm after assume, want 1000m", got)
	}
	if !c.IsAssumedPod(assumed) {
		t.Error("pod not reported assumed")
	}

	// The binding lands on another node than assumed: the cache follows.
	bound := fixture.Pod("p").Container("1", "").Node("n2").Obj()
	c.AddPod(bound)
	c.UpdateSnapshot(s)
	if a, b := requested(t, s, "n1"), requested(t, s, "n2"); a != 0 || b != 1000 {
		t.Fatalf("requested n1=%dm n2=%dm after confirmation, want 0 and 1000", a, b)
	}
	if c.IsAssumedPod(bound) {
		t.Error("confirmed pod still assumed")
	}
	if err := c.ForgetPod(bound); err == nil {
		t.Error("forgetting a bound pod succeeded")
	}

	other := fixture.Pod("q").Container("2", "").Node("n1").Obj()
	_ = c.AssumePod(other)
	_ = c.ForgetPod(other)
	c.RemovePod(bound)
	c.UpdateSnapshot(s)
	if a, b := requested(t, s, "n1"), requested(t, s, "n2"); a != 0 || b != 0 {
		t.Fatalf("requested n1=%dm n2=%dm after forget and remove, want 0 and 0", a, b)
	}
	if _, pods := c.Counts(); pods != 0 {
		t.Errorf("%d pods left in the cache", pods)
	}
}

func names(s *Snapshot) []string {
	var out []string
	for _, ni := range s.List() {
		out = append(out, ni.Node().Name)
	}
	return out
}

func TestSnapshotIncremental(t *testing.T) {
	c := New(nil)
	for _, n := range []string{"b", "a", "c"} {
		c.AddNode(fixture.Node(n, "4", "8Gi").Obj())
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	if diff := cmp.Diff([]string{"a", "b", "c"}, names(s)); diff != "" {
		t.Fatalf("nodes (-want +got):\n%s", diff)
	}
	before, _ := s.Get("a")
	untouched, _ := s.Get("b")

	c.AddPod(fixture.Pod("p").Container("1", "").Node("a").Obj())
	if got := requested(t, s, "a"); got != 0 {
		t.Fatalf("snapshot changed before UpdateSnapshot: %dm", got)
	}
	c.UpdateSnapshot(s)
	if got := requested(t, s, "a"); got != 1000 {
		t.Fatalf("a requested %dm, want 1000m", got)
	}
	if before.Requested.MilliCPU != 0 {
		t.Error("an earlier snapshot's node info was modified")
	}
	if b, _ := s.Get("b"); b != untouched {
		t.Error("an unchanged node was cloned again")
	}
	if s.List()[0] != mustGet(t, s, "a") {
		t.Error("list and map disagree")
	}

	c.RemoveNode(fixture.Node("b", "", "").Obj())
	c.UpdateSnapshot(s)
	if diff := cmp.Diff([]string{"a", "c"}, names(s)); diff != "" {
		t.Fatalf("nodes after removal (-want +got):\n%s", diff)
	}
	// A node removed while pods remain keeps their accounting if it returns.
	c.RemoveNode(fixture.Node("a", "", "").Obj())
	c.AddNode(fixture.Node("a", "4", "8Gi").Obj())
	fresh := NewSnapshot()
	c.UpdateSnapshot(fresh)
	if got := requested(t, fresh, "a"); got != 1000 {
		t.Fatalf("re-added node requested %dm, want 1000m", got)
	}
	if diff := cmp.Diff([]string{"a", "c"}, names(fresh)); diff != "" {
		t.Fatalf("fresh snapshot nodes (-want +got):\n%s", diff)
	}
}

func mustGet(t *testing.T, s *Snapshot, name string) *framework.NodeInfo {
	t.Helper()
	ni, ok := s.Get(name)
	if !ok {
		t.Fatalf("node %s missing", name)
	}
	return ni
}

// TopologyValues is cached across snapshot updates that only move pods,
// and recomputed when a node is relabelled, added or removed.
func TestSnapshotTopologyValues(t *testing.T) {
	c := New(nil)
	for i, n := range []string{"a", "b", "c"} {
		c.AddNode(fixture.Node(n, "4", "8Gi").Label("zone", []string{"z1", "z1", "z2"}[i]).Obj())
	}
	s := NewSnapshot()
	c.UpdateSnapshot(s)
	check := func(what string, want map[string]int) {
		t.Helper()
		if got := s.TopologyValues("zone"); !maps.Equal(got, want) {
			t.Errorf("%s: zones %v, want %v", what, got, want)
		}
	}
	check("initial", map[string]int{"z1": 2, "z2": 1})
	c.AddPod(fixture.Pod("p").Container("1", "1Gi").Node("a").Obj())
	c.UpdateSnapshot(s)
	check("after a pod moved in", map[string]int{"z1": 2, "z2": 1})
	c.UpdateNode(nil, fixture.Node("b", "4", "8Gi").Label("zone", "z3").Obj())
	c.UpdateSnapshot(s)
	check("after relabelling b", map[string]int{"z1": 1, "z2": 1, "z3": 1})
	c.AddNode(fixture.Node("d", "4", "8Gi").Label("zone", "z2").Obj())
	c.UpdateSnapshot(s)
	check("after adding d", map[string]int{"z1": 1, "z2": 2, "z3": 1})
	c.RemoveNode(fixture.Node("a", "4", "8Gi").Obj())
	c.UpdateSnapshot(s)
	check("after removing a", map[string]int{"z2": 2, "z3": 1})
	if got := s.TopologyValues("rack"); len(got) != 0 {
		t.Errorf("rack values %v, want none", got)
	}
}

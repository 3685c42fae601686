package cache

import (
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

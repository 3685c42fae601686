package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/informer"
)

func TestAllocator(t *testing.T) {
	a, err := NewAllocator("10.244.0.0/16", 24)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Occupy("10.244.1.0/24"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 3 {
		c, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, c)
	}
	want := []string{"10.244.0.0/24", "10.244.2.0/24", "10.244.3.0/24"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("allocated %v, want %v", got, want)
	}
	// A released CIDR is free again, but round robin hands out the next first.
	a.Release("10.244.0.0/24")
	if a.Used("10.244.0.0/24") {
		t.Errorf("10.244.0.0/24 still used after release")
	}
	if c, _ := a.Allocate(); c != "10.244.4.0/24" {
		t.Errorf("after release got %s, want 10.244.4.0/24", c)
	}
	for _, bad := range []string{"10.245.0.0/24", "10.244.0.0/25", "fd00::/64"} {
		if err := a.Occupy(bad); err == nil {
			t.Errorf("Occupy(%s) accepted a foreign CIDR", bad)
		}
	}
}

func TestAllocatorFull(t *testing.T) {
	a, err := NewAllocator("10.0.0.0/30", 31)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 2 {
		c, err := a.Allocate()
		if err != nil {
			t.Fatal(err)
		}
		if seen[c] {
			t.Errorf("%s allocated twice", c)
		}
		seen[c] = true
	}
	if _, err := a.Allocate(); !errors.Is(err, ErrFull) {
		t.Errorf("third allocation: %v, want ErrFull", err)
	}
}

func TestAllocatorIPv6(t *testing.T) {
	a, err := NewAllocator("fd00:10:244::/56", 64)
	if err != nil {
		t.Fatal(err)
	}
	a.Allocate()
	c, _ := a.Allocate()
	if c != "fd00:10:244:1::/64" {
		t.Errorf("second IPv6 CIDR %s, want fd00:10:244:1::/64", c)
	}
	for _, tc := range []struct {
		cidr string
		mask int
	}{{"10.0.0.0/8", 7}, {"10.0.0.0/8", 25}, {"bogus", 24}} {
		if _, err := NewAllocator(tc.cidr, tc.mask); err == nil {
			t.Errorf("NewAllocator(%s, %d) accepted", tc.cidr, tc.mask)
		}
	}
}

type fakeNodes struct {
	nodes   map[string]*corev1.Node
	updated []*corev1.Node
}

func (f *fakeNodes) Get(_ context.Context, _, name string) (*corev1.Node, error) {
	return f.nodes[name].DeepCopy(), nil
}

func (f *fakeNodes) Update(_ context.Context, _ string, n *corev1.Node) (*corev1.Node, error) {
	f.updated = append(f.updated, n)
	f.nodes[n.Name] = n
	return n, nil
}

func TestSync(t *testing.T) {
	node := func(name, cidr string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if cidr != "" {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		}
		return n
	}
	idx := informer.NewIndexer(nil)
	fake := &fakeNodes{nodes: map[string]*corev1.Node{}}
	for _, n := range []*corev1.Node{node("a", "10.244.0.0/24"), node("b", ""), node("c", "")} {
		_ = idx.Add(n)
		fake.nodes[n.Name] = n
	}
	// c got a CIDR the cache has not seen yet.
	fake.nodes["c"] = node("c", "10.244.5.0/24")
	alloc, _ := NewAllocator("10.244.0.0/16", 24)
	nc := newController(fake, informer.NewLister[*corev1.Node](idx), alloc, zaptest.NewLogger(t), controller.NewQueue("test", nil))
	nc.occupyExisting()
	ctx := context.Background()
	// b first: only the rebuilt set keeps it off a's CIDR.
	for _, name := range []string{"b", "a", "c"} {
		if err := nc.sync(ctx, name); err != nil {
			t.Fatalf("sync %s: %v", name, err)
		}
	}
	if len(fake.updated) != 1 || fake.updated[0].Name != "b" {
		t.Fatalf("updated %d nodes, want only b", len(fake.updated))
	}
	if got := fake.updated[0].Spec; got.PodCIDR != "10.244.1.0/24" || len(got.PodCIDRs) != 1 || got.PodCIDRs[0] != got.PodCIDR {
		t.Errorf("b got podCIDR %q podCIDRs %v, want 10.244.1.0/24 (a's 10.244.0.0/24 is taken)", got.PodCIDR, got.PodCIDRs)
	}
	if !alloc.Used("10.244.5.0/24") {
		t.Errorf("c's fresh CIDR not marked used")
	}
	if alloc.Used("10.244.2.0/24") {
		t.Errorf("the CIDR allocated for c before the fresh read was not released")
	}
	nc.deleteNode(informer.DeletedFinalStateUnknown{Key: "a", Obj: node("a", "10.244.0.0/24")})
	if alloc.Used("10.244.0.0/24") {
		t.Errorf("deleted node's CIDR still used")
	}
}

package network

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap/zaptest"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testNode(name, cidr, ip string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr}}
	if cidr != "" {
		n.Spec.PodCIDRs = []string{cidr}
	}
	if ip != "" {
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}
	}
	return n
}

func TestDesiredRoutes(t *testing.T) {
	nodes := []*corev1.Node{
		testNode("self", "10.244.0.0/24", "192.0.2.1"),
		testNode("b", "10.244.1.0/24", "192.0.2.2"),
		testNode("no-ip", "10.244.2.0/24", ""),
		testNode("no-cidr", "", "192.0.2.4"),
		testNode("overlaps-self", "10.244.0.0/16", "192.0.2.5"),
		testNode("v6-cidr-v4-ip", "fd00:1::/64", "192.0.2.6"),
	}
	got := map[string]string{}
	for dst, gw := range desiredRoutes("self", nodes) {
		got[dst] = gw.String()
	}
	want := map[string]string{"10.244.1.0/24": "192.0.2.2"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("desired routes (-want +got):\n%s", diff)
	}
}

// testNetNS makes a network namespace with a veth pair, gw0 holding
// 192.0.2.1/24 (the other nodes' InternalIPs are on it) and returns its
// path and a netlink handle in it; cleanup removes it.
func testNetNS(t *testing.T) (string, *netlink.Handle) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("host-gw route test needs root (network namespaces, netlink)")
	}
	path := filepath.Join(t.TempDir(), "netns")
	if err := NewNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveNetNS(path); err != nil {
			t.Errorf("remove netns: %v", err)
		}
	})
	ns, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "gw0"}, PeerName: "gw1"}
	if err := h.LinkAdd(link); err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("192.0.2.1/24")
	if err := h.AddrAdd(link, addr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(link); err != nil {
		t.Fatal(err)
	}
	return path, h
}

// routesIn lists the namespace's routes with a destination as "dst via
// gw proto N".
func routesIn(t *testing.T, h *netlink.Handle) []string {
	t.Helper()
	rs, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if r.Dst == nil || r.Gw == nil {
			continue
		}
		out = append(out, r.Dst.String()+" via "+r.Gw.String()+" proto "+r.Protocol.String())
	}
	sort.Strings(out)
	return out
}

// TestHostGWRoutes keeps the routes in a network namespace of its own as
// nodes come, change and go: one per other node, none for the node's own
// CIDR, a foreign route (proto static) to a node's CIDR left alone and
// other foreign routes never touched.
func TestHostGWRoutes(t *testing.T) {
	path, h := testNetNS(t)
	// Someone else's routes: one to a CIDR a node will have, one elsewhere.
	_, foreignDst, _ := net.ParseCIDR("10.244.9.0/24")
	_, otherDst, _ := net.ParseCIDR("198.51.100.0/24")
	for _, dst := range []*net.IPNet{foreignDst, otherDst} {
		if err := h.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP("192.0.2.254"), Protocol: unix.RTPROT_STATIC}); err != nil {
			t.Fatal(err)
		}
	}
	foreign := []string{"10.244.9.0/24 via 192.0.2.254 proto static", "198.51.100.0/24 via 192.0.2.254 proto static"}

	g, err := NewHostGW(HostGWConfig{NodeName: "self", NetNS: path, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	self := testNode("self", "10.244.0.0/24", "192.0.2.1")
	b := testNode("b", "10.244.1.0/24", "192.0.2.2")
	c := testNode("c", "10.244.2.0/24", "192.0.2.3")
	taken := testNode("taken", "10.244.9.0/24", "192.0.2.9")

	for _, step := range []struct {
		name  string
		nodes []*corev1.Node
		want  []string
	}{
		{"only self", []*corev1.Node{self}, nil},
		{"two more nodes", []*corev1.Node{self, b, c, taken}, []string{"10.244.1.0/24 via 192.0.2.2 proto 118", "10.244.2.0/24 via 192.0.2.3 proto 118"}},
		{"a node's IP changes", []*corev1.Node{self, b, testNode("c", "10.244.2.0/24", "192.0.2.33"), taken}, []string{"10.244.1.0/24 via 192.0.2.2 proto 118", "10.244.2.0/24 via 192.0.2.33 proto 118"}},
		{"a node is deleted", []*corev1.Node{self, testNode("c", "10.244.2.0/24", "192.0.2.33"), taken}, []string{"10.244.2.0/24 via 192.0.2.33 proto 118"}},
		{"all others deleted", []*corev1.Node{self}, nil},
	} {
		if err := g.Sync(step.nodes); err != nil {
			t.Fatalf("%s: sync: %v", step.name, err)
		}
		want := append(append([]string{}, step.want...), foreign...)
		sort.Strings(want)
		if diff := cmp.Diff(want, routesIn(t, h)); diff != "" {
			t.Errorf("%s: routes (-want +got):\n%s", step.name, diff)
		}
	}
}

// TestHostGWRun follows the nodes through Run: a route someone deleted
// comes back at the resync.
func TestHostGWRun(t *testing.T) {
	path, h := testNetNS(t)
	g, err := NewHostGW(HostGWConfig{NodeName: "self", NetNS: path, ResyncInterval: 100 * time.Millisecond, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	nodes := []*corev1.Node{testNode("self", "10.244.0.0/24", "192.0.2.1"), testNode("b", "10.244.1.0/24", "192.0.2.2")}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() {
		cancel()
		<-done
	}()
	go func() {
		defer close(done)
		g.Run(ctx, func() []*corev1.Node { return nodes }, func() bool { return true })
	}()
	waitRoutes := func(what string, want []string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := routesIn(t, h)
			if cmp.Equal(want, got) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: routes %q, want %q", what, got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := []string{"10.244.1.0/24 via 192.0.2.2 proto 118"}
	waitRoutes("first sync", want)
	_, dst, _ := net.ParseCIDR("10.244.1.0/24")
	if err := h.RouteDel(&netlink.Route{Dst: dst, Gw: net.ParseIP("192.0.2.2"), Protocol: RouteProtocol}); err != nil {
		t.Fatal(err)
	}
	waitRoutes("resync after a deletion", want)
}

func TestLoopbackUp(t *testing.T) {
	path, h := testNetNS(t)
	if err := LoopbackUp(path); err != nil {
		t.Fatal(err)
	}
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("lo flags %v, want up", lo.Attrs().Flags)
	}
	addrs, err := h.AddrList(lo, netlink.FAMILY_V4)
	if err != nil || len(addrs) == 0 || !addrs[0].IP.Equal(net.ParseIP("127.0.0.1")) {
		t.Errorf("lo addresses %v, %v; want 127.0.0.1", addrs, err)
	}
}

package iptables

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func nodeObject(name, zone, podCIDR string, addrs ...corev1.NodeAddress) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}}, Status: corev1.NodeStatus{Addresses: addrs}}
	if zone != "" {
		n.Labels[corev1.LabelTopologyZone] = zone
	}
	if podCIDR != "" {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = podCIDR, []string{podCIDR}
	}
	return n
}

func internalIP(ip string) corev1.NodeAddress {
	return corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip}
}

func TestNodeConfig(t *testing.T) {
	dual := nodeObject("node-a", "zone-1", "", internalIP("fd00::1"), internalIP("192.168.5.1"),
		corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: "203.0.113.7"}, corev1.NodeAddress{Type: corev1.NodeHostName, Address: "node-a"})
	dual.Spec.PodCIDRs = []string{"fd00:10::/64", "10.244.3.0/24"}
	for _, tc := range []struct {
		name string
		opts Options
		node *corev1.Node
		want Config
	}{
		{"no node", Options{Config: Config{NodeName: "node-a"}, NodePortsOnNodeIPs: true, LocalFromNodeCIDR: true}, nil,
			Config{NodeName: "node-a"}},
		{"from the node", Options{Config: Config{NodeName: "node-a"}, NodePortsOnNodeIPs: true, LocalFromNodeCIDR: true}, dual,
			Config{NodeName: "node-a", Zone: "zone-1", ClusterCIDR: "10.244.3.0/24", NodePortAddresses: []string{"192.168.5.1", "203.0.113.7"}}},
		{"flags win", Options{Config: Config{NodeName: "node-a", ClusterCIDR: "10.244.0.0/16", NodePortAddresses: []string{"10.0.0.1"}}, NodePortsOnNodeIPs: true, LocalFromNodeCIDR: true}, dual,
			Config{NodeName: "node-a", Zone: "zone-1", ClusterCIDR: "10.244.0.0/16", NodePortAddresses: []string{"10.0.0.1"}}},
		{"not asked", Options{Config: Config{NodeName: "node-a"}}, dual,
			Config{NodeName: "node-a", Zone: "zone-1"}},
		{"no addresses yet", Options{Config: Config{NodeName: "node-a"}, NodePortsOnNodeIPs: true, LocalFromNodeCIDR: true}, nodeObject("node-a", "", ""),
			Config{NodeName: "node-a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := NodeConfig(tc.opts, tc.node)
			if !got.equal(tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func hinted(e discoveryv1.Endpoint, zone, node string) discoveryv1.Endpoint {
	e.Hints = &discoveryv1.EndpointHints{}
	if zone != "" {
		e.Hints.ForZones = []discoveryv1.ForZone{{Name: zone}}
	}
	if node != "" {
		e.Hints.ForNodes = []discoveryv1.ForNode{{Name: node}}
	}
	return e
}

// TestTopologyHints checks upstream's use of EndpointSlice hints: only
// the endpoints for this node (else zone), when every ready endpoint has
// hints and one is for this node (zone); every endpoint otherwise.
func TestTopologyHints(t *testing.T) {
	svc := service("ns", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, httpPort(0))
	a1, b1, b2 := ep("10.244.1.1", "node-a", true), ep("10.244.2.1", "node-b", true), ep("10.244.2.2", "node-b", true)
	cfg := Config{NodeName: "node-a", Zone: "zone-1", ClusterCIDR: "10.244.0.0/16"}
	for _, tc := range []struct {
		name string
		cfg  Config
		eps  []discoveryv1.Endpoint
		want []string
	}{
		{"no hints", cfg, []discoveryv1.Endpoint{a1, b1, b2}, []string{"10.244.1.1", "10.244.2.1", "10.244.2.2"}},
		{"zone hints", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-1", ""), hinted(b1, "zone-1", ""), hinted(b2, "zone-2", "")}, []string{"10.244.1.1", "10.244.2.1"}},
		{"one endpoint unhinted", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-1", ""), hinted(b1, "zone-1", ""), b2}, []string{"10.244.1.1", "10.244.2.1", "10.244.2.2"}},
		{"none for this zone", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-2", ""), hinted(b1, "zone-2", ""), hinted(b2, "zone-3", "")}, []string{"10.244.1.1", "10.244.2.1", "10.244.2.2"}},
		{"node without zone", Config{NodeName: "node-a", ClusterCIDR: "10.244.0.0/16"}, []discoveryv1.Endpoint{hinted(a1, "zone-1", ""), hinted(b2, "zone-2", "")}, []string{"10.244.1.1", "10.244.2.2"}},
		{"node hints first", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-1", "node-a"), hinted(b1, "zone-1", "node-b"), hinted(b2, "zone-2", "node-b")}, []string{"10.244.1.1"}},
		{"no node hint for this node", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-2", "node-c"), hinted(b1, "zone-1", "node-b"), hinted(b2, "zone-2", "node-b")}, []string{"10.244.2.1"}},
		{"unready endpoints do not count", cfg, []discoveryv1.Endpoint{hinted(a1, "zone-1", ""), ep("10.244.2.9", "node-b", false)}, []string{"10.244.1.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := buildService(tc.cfg, ServicePorts([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice("ns", "web", httpPort(0), tc.eps...)}), false)
			var got []string
			for _, line := range strings.Split(s.rules.b.String(), "\n") {
				if _, dst, ok := strings.Cut(line, "--to-destination "); ok {
					got = append(got, strings.TrimSuffix(dst, ":8080"))
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("endpoints DNATed to (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSetNode checks, in real iptables, that the Node's addresses, pod CIDR
// and zone reach the rules through a full sync, and that the result is
// what a proxier that knew the Node from the start writes.
func TestSetNode(t *testing.T) {
	nsA, nsB := netns(t, "node-a"), netns(t, "node-b")
	c := newCache(t)
	port := httpPort(30080)
	c.set(service("ns1", "np", "10.96.0.11", corev1.ServiceTypeNodePort, port), false)
	c.set(slice("ns1", "np", port, hinted(ep("10.244.3.5", "node-a", true), "zone-1", ""), hinted(ep("10.244.4.5", "node-b", true), "zone-2", "")), false)
	opts := func(ns string) Options {
		return Options{Config: Config{NodeName: "node-a"}, NodePortsOnNodeIPs: true, LocalFromNodeCIDR: true,
			Runner: &Runner{NetNS: ns}, Logger: zaptest.NewLogger(t)}
	}
	p := New(c.svcLs, c.sliceLs, opts(nsA))
	syncOnce(t, p, true)
	before := save(t, nsA, false)
	for _, want := range []string{"--dst-type LOCAL -j KUBE-NODEPORTS", "10.244.3.5:8080", "10.244.4.5:8080"} {
		if !strings.Contains(before, want) {
			t.Errorf("without a Node, the rules lack %q:\n%s", want, before)
		}
	}
	if strings.Contains(before, "! -s") {
		t.Errorf("without a Node (no pod CIDR), the rules detect local traffic:\n%s", before)
	}

	node := nodeObject("node-a", "zone-1", "10.244.3.0/24", internalIP("192.168.5.1"))
	p.NodeHandler().OnAdd(node, false)
	syncOnce(t, p, true)
	after := save(t, nsA, false)
	for _, want := range []string{"-A KUBE-SERVICES -d 192.168.5.1/32 ", "-A KUBE-SVC-YLAE7TD4E22QEDEQ ! -s 10.244.3.0/24 ", "10.244.3.5:8080"} {
		if !strings.Contains(after, want) {
			t.Errorf("with the Node, the rules lack %q:\n%s", want, after)
		}
	}
	for _, not := range []string{"--dst-type LOCAL -j KUBE-NODEPORTS", "10.244.4.5:8080"} {
		if strings.Contains(after, not) {
			t.Errorf("with the Node, the rules still have %q:\n%s", not, after)
		}
	}
	fresh := New(c.svcLs, c.sliceLs, opts(nsB))
	fresh.SetNode(node)
	syncOnce(t, fresh, true)
	if diff := cmp.Diff(save(t, nsB, false), after); diff != "" {
		t.Errorf("after the Node arrived (-fresh proxier +updated):\n%s", diff)
	}

	// An update that changes nothing the rules use makes no full sync.
	relabelled := node.DeepCopy()
	relabelled.Labels["other"] = "x"
	p.NodeHandler().OnUpdate(node, relabelled)
	if res := syncOnce(t, p, false); res.Restore != nil {
		t.Errorf("a Node change that changes no rule wrote:\n%s", res.Restore)
	}
	// The Node deleted (a kubelet registers it again): the rules stay.
	p.NodeHandler().OnDelete(relabelled)
	if res := syncOnce(t, p, false); res.Restore != nil {
		t.Errorf("the Node's deletion wrote:\n%s", res.Restore)
	}
	// Back to no Node: every local address, no local-traffic detection.
	p.SetNode(nil)
	syncOnce(t, p, true)
	if diff := cmp.Diff(before, save(t, nsA, false)); diff != "" {
		t.Errorf("without the Node again (-before it came +now):\n%s", diff)
	}
}

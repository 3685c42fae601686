package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// TestOwnNode runs kube-proxy against a real apiserver with no
// --cluster-cidr and --nodeport-addresses primary, and checks that its rules follow
// its Node (found by --hostname-override): NodePorts on the Node's
// InternalIP, local traffic by the Node's pod CIDR (upstream's
// --detect-local-mode NodeCIDR), both updated when the Node changes.
func TestOwnNode(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace and programs iptables inside it")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ns := fmt.Sprintf("cxn%d", os.Getpid()%100000)
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })

	env := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nodes := client.For[*corev1.Node](env.Client)
	obj := &objects{t: t, ctx: ctx, svcs: client.For[*corev1.Service](env.Client), slices: client.For[*discoveryv1.EndpointSlice](env.Client)}
	// Another node, which must not count.
	if _, err := nodes.Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-other"},
		Spec: corev1.NodeSpec{PodCIDR: "10.251.9.0/24", PodCIDRs: []string{"10.251.9.0/24"}}}); err != nil {
		t.Fatalf("create node-other: %v", err)
	}
	backend := &pod{name: "backend", ip: "10.251.1.5", node: &node{name: "node-x"}}
	nodeX, err := nodes.Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-x", Labels: map[string]string{corev1.LabelTopologyZone: "zone-1"}},
		Spec: corev1.NodeSpec{PodCIDR: "10.251.1.0/24", PodCIDRs: []string{"10.251.1.0/24"}}})
	if err != nil {
		t.Fatalf("create node-x: %v", err)
	}
	nodeX.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.168.88.1"}, {Type: corev1.NodeHostName, Address: "node-x"}}
	if nodeX, err = nodes.UpdateStatus(ctx, "", nodeX); err != nil {
		t.Fatalf("node-x status: %v", err)
	}
	obj.service("np", func(s *corev1.ServiceSpec) { s.Type = corev1.ServiceTypeNodePort })
	obj.slice("np", httpEndpointPort, endpoint(backend, ""))

	o := NewOptions()
	o.Kubeconfig = env.Kubeconfig
	o.HostnameOverride = "Node-X" // lower-cased, as upstream
	o.NodePortAddresses = []string{"primary"}
	o.NetNS = nsexec.Path(ns)
	o.MinSyncPeriod = 50 * time.Millisecond
	o.DNSBind = ""
	o.HealthzBindAddress, o.HealthzPort = "127.0.0.1", 0
	o.MetricsBindAddress, o.MetricsPort = "127.0.0.1", 0
	s, err := Start(ctx, o, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatalf("start kube-proxy: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })

	rules := func(want, not []string) func() error {
		return func() error {
			out, err := exec.Command("ip", "netns", "exec", ns, "iptables-save", "-t", "nat").CombinedOutput()
			if err != nil {
				return fmt.Errorf("iptables-save: %v: %s", err, out)
			}
			for _, w := range want {
				if !strings.Contains(string(out), w) {
					return fmt.Errorf("no %q in\n%s", w, out)
				}
			}
			for _, n := range not {
				if strings.Contains(string(out), n) {
					return fmt.Errorf("%q still in\n%s", n, out)
				}
			}
			return nil
		}
	}
	eventually(t, 20*time.Second, "rules from node-x", rules(
		[]string{"-A KUBE-SERVICES -d 192.168.88.1/32 ", "! -s 10.251.1.0/24 ", "10.251.1.5:8080"},
		[]string{"--dst-type LOCAL -j KUBE-NODEPORTS", "10.251.9.0/24"}))

	nodeX.Status.Addresses[0].Address = "192.168.88.2"
	if _, err := nodes.UpdateStatus(ctx, "", nodeX); err != nil {
		t.Fatalf("node-x status: %v", err)
	}
	eventually(t, 20*time.Second, "rules from the updated node-x", rules(
		[]string{"-A KUBE-SERVICES -d 192.168.88.2/32 ", "! -s 10.251.1.0/24 "},
		[]string{"192.168.88.1/32"}))
}

package iptables

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func service(ns, name, ip string, typ corev1.ServiceType, ports ...corev1.ServicePort) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       corev1.ServiceSpec{Type: typ, ClusterIP: ip, ClusterIPs: []string{ip}, Ports: ports},
	}
}

func slice(ns, svc string, port corev1.ServicePort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svc + "-abc", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(port.Name), Port: ptr.To(port.TargetPort.IntVal), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	}
}

func ep(ip, node string, ready bool) discoveryv1.Endpoint {
	return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)}}
}

func httpPort(nodePort int32) corev1.ServicePort {
	return corev1.ServicePort{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstrFromInt(8080), NodePort: nodePort}
}

var testConfig = Config{NodeName: "node-a", ClusterCIDR: "10.244.0.0/16"}

func TestGolden(t *testing.T) {
	affinity := service("ns1", "sticky", "10.96.0.13", corev1.ServiceTypeClusterIP, httpPort(0))
	affinity.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	affinity.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	local := service("ns1", "local", "10.96.0.14", corev1.ServiceTypeNodePort, httpPort(30081))
	local.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal

	tests := []struct {
		name     string
		cfg      Config
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		stale    map[string]bool
	}{
		{
			name:     "clusterip-3-endpoints",
			services: []*corev1.Service{service("ns1", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, httpPort(0))},
			slices: []*discoveryv1.EndpointSlice{slice("ns1", "web", httpPort(0),
				ep("10.244.1.3", "node-b", true), ep("10.244.1.1", "node-a", true), ep("10.244.1.2", "node-b", true),
				ep("10.244.1.9", "node-b", false))},
			stale: map[string]bool{"KUBE-SVC-AAAAAAAAAAAAAAAA": true, "KUBE-SEP-BBBBBBBBBBBBBBBB": true},
		},
		{
			name:     "nodeport",
			services: []*corev1.Service{service("ns1", "np", "10.96.0.11", corev1.ServiceTypeNodePort, httpPort(30080))},
			slices:   []*discoveryv1.EndpointSlice{slice("ns1", "np", httpPort(0), ep("10.244.1.1", "node-a", true), ep("10.244.2.1", "node-b", true))},
		},
		{
			name: "no-endpoints",
			services: []*corev1.Service{
				service("ns1", "empty", "10.96.0.12", corev1.ServiceTypeNodePort, httpPort(30082)),
				service("ns1", "unready", "10.96.0.15", corev1.ServiceTypeClusterIP, httpPort(0)),
			},
			slices: []*discoveryv1.EndpointSlice{slice("ns1", "unready", httpPort(0), ep("10.244.1.1", "node-a", false))},
		},
		{
			name:     "clientip-affinity",
			services: []*corev1.Service{affinity},
			slices:   []*discoveryv1.EndpointSlice{slice("ns1", "sticky", httpPort(0), ep("10.244.1.1", "node-a", true), ep("10.244.2.1", "node-b", true))},
		},
		{
			name:     "external-traffic-local",
			cfg:      Config{NodeName: "node-a", ClusterCIDR: "10.244.0.0/16", NodePortAddresses: []string{"192.168.1.10"}},
			services: []*corev1.Service{local},
			slices:   []*discoveryv1.EndpointSlice{slice("ns1", "local", httpPort(0), ep("10.244.1.1", "node-a", true), ep("10.244.2.1", "node-b", true))},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.NodeName == "" {
				cfg = testConfig
			}
			rs := Build(cfg, ServicePorts(tc.services, tc.slices), tc.stale)
			got := string(rs.Filter) + string(rs.NAT)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("rules differ from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}

func TestChainNamesMatchUpstream(t *testing.T) {
	// Values computed by upstream kube-proxy's servicePortChainName and
	// servicePortEndpointChainName for the same inputs.
	if got, want := serviceChainName("ns1/svc1:p80", "tcp"), "KUBE-SVC-XPGD46QRK7WJZT7O"; got != want {
		t.Errorf("service chain: got %s, want %s", got, want)
	}
	if got, want := endpointChainName("ns1/svc1:p80", "tcp", "10.180.0.1:80"), "KUBE-SEP-SXIVWICOYRO3J4NJ"; got != want {
		t.Errorf("endpoint chain: got %s, want %s", got, want)
	}
}

func TestProbabilities(t *testing.T) {
	svc := service("ns", "s", "10.96.0.1", corev1.ServiceTypeClusterIP, httpPort(0))
	var eps []discoveryv1.Endpoint
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"} {
		eps = append(eps, ep(ip, "n", true))
	}
	rs := Build(testConfig, ServicePorts([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice("ns", "s", httpPort(0), eps...)}), nil)
	for _, want := range []string{"--probability 0.2500000000", "--probability 0.3333333333", "--probability 0.5000000000"} {
		if !strings.Contains(string(rs.NAT), want) {
			t.Errorf("nat rules lack %q:\n%s", want, rs.NAT)
		}
	}
	if n := strings.Count(string(rs.NAT), "--probability"); n != 3 {
		t.Errorf("got %d probability rules, want 3", n)
	}
}

// TestIPv6LeftOut checks that IPv6 addresses never reach the (IPv4)
// iptables rules, where one would fail the whole restore: a dual-stack
// Service keeps its IPv4 side, an IPv6-only one has no rules.
func TestIPv6LeftOut(t *testing.T) {
	dual := service("ns", "dual", "10.96.0.10", corev1.ServiceTypeClusterIP, httpPort(0))
	dual.Spec.ClusterIPs = []string{"10.96.0.10", "fd00:96::10"}
	dual.Spec.ExternalIPs = []string{"203.0.113.10", "2001:db8::10"}
	v6 := service("ns", "v6", "fd00:96::11", corev1.ServiceTypeClusterIP, httpPort(0))
	v6Slice := slice("ns", "dual", httpPort(0), ep("fd00:244::1", "node-a", true))
	v6Slice.Name, v6Slice.AddressType = "dual-v6", discoveryv1.AddressTypeIPv6
	ports := ServicePorts([]*corev1.Service{dual, v6}, []*discoveryv1.EndpointSlice{
		slice("ns", "dual", httpPort(0), ep("10.244.1.1", "node-a", true)), v6Slice,
		slice("ns", "v6", httpPort(0), ep("fd00:244::2", "node-a", true)),
	})
	if len(ports) != 1 {
		t.Fatalf("got %d service ports, want the dual-stack Service's one", len(ports))
	}
	rs := Build(testConfig, ports, nil)
	text := string(rs.NAT) + string(rs.Filter)
	if strings.Contains(text, "fd00") || strings.Contains(text, "2001:db8") {
		t.Errorf("IPv6 addresses in the rules:\n%s", text)
	}
	for _, want := range []string{"-d 10.96.0.10 ", "-d 203.0.113.10 ", "10.244.1.1:8080"} {
		if !strings.Contains(text, want) {
			t.Errorf("rules lack %q:\n%s", want, text)
		}
	}
}

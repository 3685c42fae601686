package dns

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/coxswain/coxswain/pkg/informer"
)

func indexers(extra informer.Indexers) informer.Indexers {
	out := informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc}
	maps.Copy(out, extra)
	return out
}

func startServer(t *testing.T, upstream string) string {
	t.Helper()
	services := informer.NewIndexer(indexers(ServiceIndexers))
	slicesIdx := informer.NewIndexer(indexers(SliceIndexers))
	for _, svc := range []*corev1.Service{
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
			Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", ClusterIPs: []string{"10.96.0.10"}, Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP},
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "pg"},
			Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, ClusterIPs: []string{corev1.ClusterIPNone}, Ports: []corev1.ServicePort{
				{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP},
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "ext"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"},
		},
	} {
		if err := services.Add(svc); err != nil {
			t.Fatal(err)
		}
	}
	ready := discoveryv1.EndpointConditions{Ready: ptr.To(true)}
	if err := slicesIdx.Add(&discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "db", Name: "pg-1", Labels: map[string]string{discoveryv1.LabelServiceName: "pg"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("pg"), Port: ptr.To[int32](5432)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{"10.244.1.5"}, Hostname: ptr.To("pg-0"), Conditions: ready},
			{Addresses: []string{"10.244.2.6"}, Conditions: ready},
			{Addresses: []string{"10.244.3.7"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	s := New(services, slicesIdx, Options{Domain: "cluster.local", Upstream: upstream, Logger: zaptest.NewLogger(t)})
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return addr
}

func query(t *testing.T, addr, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers renders the answer section without TTLs and headers' noise.
func answers(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, "A "+v.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+v.AAAA.String())
		case *dns.SRV:
			out = append(out, "SRV "+v.Target+" "+strconv.Itoa(int(v.Port)))
		case *dns.PTR:
			out = append(out, "PTR "+v.Ptr)
		case *dns.CNAME:
			out = append(out, "CNAME "+v.Target)
		default:
			out = append(out, rr.String())
		}
	}
	sort.Strings(out)
	return out
}

func TestServer(t *testing.T) {
	addr := startServer(t, "")
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.10"}},
		{"WEB.Default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.96.0.10"}},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.1.5", "A 10.244.2.6"}},
		{"pg-0.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.1.5"}},
		{"10-244-2-6.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.2.6"}},
		{"10-244-3-7.pg.db.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV web.default.svc.cluster.local. 80"}},
		{"_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV web.default.svc.cluster.local. 53"}},
		{"_dns._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil},
		{"_pg._tcp.pg.db.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"SRV 10-244-2-6.pg.db.svc.cluster.local. 5432", "SRV pg-0.pg.db.svc.cluster.local. 5432"}},
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR web.default.svc.cluster.local."}},
		{"5.1.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR pg-0.pg.db.svc.cluster.local."}},
		{"6.2.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"PTR 10-244-2-6.pg.db.svc.cluster.local."}},
		{"7.3.244.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, nil},
		{"ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME example.com."}},
		{"10-244-1-5.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"A 10.244.1.5"}},
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"a.b.c.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, nil},
		{"example.com.", dns.TypeA, dns.RcodeRefused, nil},
		{"1.0.0.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, nil},
	}
	for _, tc := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				r := query(t, addr, network, tc.name, tc.qtype)
				if r.Rcode != tc.rcode {
					t.Errorf("rcode: got %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tc.rcode])
				}
				if diff := cmp.Diff(tc.want, answers(r)); diff != "" {
					t.Errorf("answers (-want +got):\n%s", diff)
				}
				if tc.rcode != dns.RcodeRefused && !r.Authoritative {
					t.Errorf("answer is not authoritative")
				}
			})
		}
	}
}

func TestForwardToUpstream(t *testing.T) {
	// The "upstream" is another instance of the server for another domain.
	upstreamServices := informer.NewIndexer(indexers(ServiceIndexers))
	_ = upstreamServices.Add(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "x", Name: "y"}, Spec: corev1.ServiceSpec{ClusterIP: "10.0.0.1", ClusterIPs: []string{"10.0.0.1"}}})
	up := New(upstreamServices, informer.NewIndexer(indexers(SliceIndexers)), Options{Domain: "example.org"})
	upAddr, err := up.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Stop)
	addr := startServer(t, upAddr)
	r := query(t, addr, "udp", "y.x.svc.example.org.", dns.TypeA)
	if got, want := answers(r), []string{"A 10.0.0.1"}; !slices.Equal(got, want) {
		t.Errorf("forwarded answer: got %v, want %v", got, want)
	}
	r = query(t, addr, "udp", "web.default.svc.cluster.local.", dns.TypeA)
	if got, want := answers(r), []string{"A 10.96.0.10"}; !slices.Equal(got, want) {
		t.Errorf("local answer: got %v, want %v", got, want)
	}
}

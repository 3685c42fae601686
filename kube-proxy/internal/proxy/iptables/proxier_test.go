package iptables

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/pkg/informer"
)

// netns makes a network namespace for the test and returns its file.
func netns(t *testing.T, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: programs iptables inside network namespaces")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	ns := fmt.Sprintf("cxs-ipt-%d-%s", os.Getpid()%100000, name)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	return nsexec.Path(ns)
}

// cache is what a proxier's listers read, filled by hand.
type cache struct {
	t             *testing.T
	services, eps informer.Indexer
	svcLs         *informer.Lister[*corev1.Service]
	sliceLs       *informer.Lister[*discoveryv1.EndpointSlice]
	proxiers      []*Proxier
	legacy        bool
}

func newCache(t *testing.T) *cache {
	idx := func() informer.Indexer {
		return informer.NewIndexer(informer.Indexers{informer.NamespaceIndex: informer.NamespaceIndexFunc})
	}
	c := &cache{t: t, services: idx(), eps: idx()}
	c.svcLs = informer.NewLister[*corev1.Service](c.services)
	c.sliceLs = informer.NewLister[*discoveryv1.EndpointSlice](c.eps)
	return c
}

func (c *cache) proxier(ns string) *Proxier {
	p := New(c.svcLs, c.sliceLs, Options{Config: testConfig, Runner: &Runner{NetNS: ns, Legacy: c.legacy}, Logger: zaptest.NewLogger(c.t)})
	c.proxiers = append(c.proxiers, p)
	return p
}

// set stores (or, with del, removes) an object and tells the proxiers, as
// an informer does.
func (c *cache) set(obj runtime.Object, del bool) {
	c.t.Helper()
	store := c.eps
	if _, ok := obj.(*corev1.Service); ok {
		store = c.services
	}
	_, exists, _ := store.Get(obj)
	var err error
	switch {
	case del:
		err = store.Delete(obj)
	case exists:
		err = store.Update(obj)
	default:
		err = store.Add(obj)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	for _, p := range c.proxiers {
		if del {
			p.Handler().OnDelete(obj)
		} else {
			p.Handler().OnAdd(obj, false)
		}
	}
}

// save returns the nat and filter tables of ns, without counters and
// iptables-save's comment lines.
func save(t *testing.T, ns string, legacy bool) string {
	t.Helper()
	r := &Runner{NetNS: ns, Legacy: legacy}
	var b strings.Builder
	for _, table := range []string{TableFilter, TableNAT} {
		out, err := r.Save(context.Background(), table)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
	s := regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(b.String(), "")
	return regexp.MustCompile(`\[\d+:\d+\]`).ReplaceAllString(s, "[0:0]")
}

func syncOnce(t *testing.T, p *Proxier, wantFull bool) SyncResult {
	t.Helper()
	if err := p.Sync(context.Background()); err != nil {
		t.Fatalf("sync: %v", err)
	}
	res := p.LastSync()
	if res.Full != wantFull {
		t.Fatalf("sync was full=%v, want %v", res.Full, wantFull)
	}
	return res
}

// TestPartialSyncsMatchFullSync applies a series of changes with partial
// syncs and checks, in real iptables, that the result is exactly what a
// full sync of the final state writes into an empty namespace; then that a
// restarted proxier removes the chains of a Service deleted while it was down.
func TestPartialSyncsMatchFullSync(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "nft", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(map[bool]string{false: "iptables-nft-restore", true: "iptables-legacy-restore"}[legacy]); err != nil {
				t.Skipf("no %s backend", name)
			}
			testPartialSyncs(t, legacy)
		})
	}
}

func testPartialSyncs(t *testing.T, legacy bool) {
	nsA, nsB := netns(t, "a"), netns(t, "b")
	c := newCache(t)
	c.legacy = legacy
	webPort, dnsPort := httpPort(0), corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstrFromInt(5353)}
	web := service("ns1", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, webPort)
	np := service("ns1", "np", "10.96.0.11", corev1.ServiceTypeNodePort, httpPort(30080))
	other := service("ns2", "other", "10.96.0.12", corev1.ServiceTypeClusterIP, webPort)
	c.set(web, false)
	c.set(np, false)
	c.set(other, false)
	c.set(slice("ns1", "web", webPort, ep("10.244.1.1", "node-a", true), ep("10.244.1.2", "node-b", true)), false)
	c.set(slice("ns1", "np", webPort, ep("10.244.2.1", "node-a", true)), false)
	c.set(slice("ns2", "other", webPort, ep("10.244.3.1", "node-b", true)), false)

	pA := c.proxier(nsA)
	first := syncOnce(t, pA, true)
	if first.Rules[TableNAT] == 0 || !strings.Contains(string(first.Restore), ":KUBE-SERVICES") {
		t.Fatalf("first sync wrote no rules:\n%s", first.Restore)
	}

	// Nothing changed: nothing is written.
	c.set(web, false)
	if res := syncOnce(t, pA, false); res.Restore != nil {
		t.Errorf("a change that changes no rule wrote:\n%s", res.Restore)
	}

	// An endpoint change rewrites that Service's chains alone.
	c.set(slice("ns1", "web", webPort, ep("10.244.1.1", "node-a", true), ep("10.244.1.3", "node-b", true)), false)
	res := syncOnce(t, pA, false)
	for _, not := range []string{":KUBE-SERVICES", ":KUBE-NODEPORTS", "*filter", "ns1/np", "ns2/other"} {
		if strings.Contains(string(res.Restore), not) {
			t.Errorf("an endpoint change of ns1/web wrote %q:\n%s", not, res.Restore)
		}
	}
	if !strings.Contains(string(res.Restore), "-X "+endpointChainName("ns1/web:http", "tcp", "10.244.1.2:8080")) {
		t.Errorf("the removed endpoint's chain is not deleted:\n%s", res.Restore)
	}

	// More changes: a new UDP Service, a NodePort losing its endpoints, a
	// Service deleted, another becoming headless.
	dns := service("ns1", "dns", "10.96.0.13", corev1.ServiceTypeClusterIP, dnsPort)
	c.set(dns, false)
	c.set(slice("ns1", "dns", dnsPort, ep("10.244.1.5", "node-a", true)), false)
	c.set(slice("ns1", "np", webPort), false)
	c.set(other, true)
	headless := service("ns1", "web", "None", corev1.ServiceTypeClusterIP, webPort)
	headless.Spec.ClusterIPs = []string{"None"}
	syncOnce(t, pA, false)
	c.set(headless, false)
	syncOnce(t, pA, false)
	c.set(service("ns1", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, webPort), false)
	syncOnce(t, pA, false)

	pB := c.proxier(nsB)
	syncOnce(t, pB, true)
	if diff := cmp.Diff(save(t, nsB, c.legacy), save(t, nsA, c.legacy)); diff != "" {
		t.Errorf("rules after partial syncs differ from a full sync (-full +partial):\n%s", diff)
	}

	// Restart: a Service deleted while no proxier ran leaves stale chains
	// that the new proxier's first (full) sync removes.
	c.proxiers = nil
	if err := c.services.Delete(np); err != nil {
		t.Fatal(err)
	}
	pA2 := c.proxier(nsA)
	syncOnce(t, pA2, true)
	pB2 := c.proxier(nsB)
	syncOnce(t, pB2, true)
	if diff := cmp.Diff(save(t, nsB, c.legacy), save(t, nsA, c.legacy)); diff != "" {
		t.Errorf("after a restart (-fresh proxier in B +restarted in A):\n%s", diff)
	}
	if strings.Contains(save(t, nsA, c.legacy), "ns1/np") {
		t.Errorf("chains of the deleted ns1/np survived the restart")
	}
	// Every jump from a built-in chain is there once, after the restart too.
	for _, j := range jumpRules {
		if n := strings.Count(save(t, nsA, c.legacy), j.saveLine()+"\n"); n != 1 {
			t.Errorf("%q is there %d times, want once", j.saveLine(), n)
		}
	}
}

// TestStaleUDPFlows checks which conntrack entries a change of a UDP
// Service's endpoints asks to delete.
func TestStaleUDPFlows(t *testing.T) {
	port := corev1.ServicePort{Name: "dns", Protocol: corev1.ProtocolUDP, Port: 53, TargetPort: intstrFromInt(5353), NodePort: 30053}
	svc := service("ns", "dns", "10.96.0.10", corev1.ServiceTypeNodePort, port)
	build := func(eps ...discoveryv1.Endpoint) *serviceRules {
		return buildService(testConfig, ServicePorts([]*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice("ns", "dns", port, eps...)}), false)
	}
	two := build(ep("10.244.1.1", "node-a", true), ep("10.244.1.2", "node-b", true))
	one := build(ep("10.244.1.1", "node-a", true))
	none := build()
	for _, tc := range []struct {
		name     string
		old, new *serviceRules
		want     []UDPFlow
	}{
		{"endpoint removed", two, one, []UDPFlow{{OrigDst: "10.96.0.10", OrigDstPort: 53, ReplySrc: "10.244.1.2"}, {OrigDstPort: 30053, ReplySrc: "10.244.1.2"}}},
		{"endpoint added", one, two, nil},
		{"first endpoint", none, one, []UDPFlow{{OrigDst: "10.96.0.10", OrigDstPort: 53}, {OrigDstPort: 30053}}},
		{"service deleted", one, nil, []UDPFlow{{OrigDst: "10.96.0.10", OrigDstPort: 53, ReplySrc: "10.244.1.1"}, {OrigDstPort: 30053, ReplySrc: "10.244.1.1"}}},
	} {
		if diff := cmp.Diff(tc.want, staleUDPFlows(tc.old, tc.new)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestBuildOneReusesUnchangedServices checks that a full resync generates
// again only the Services whose objects changed.
func TestBuildOneReusesUnchangedServices(t *testing.T) {
	c := newCache(t)
	p := New(c.svcLs, c.sliceLs, Options{Config: testConfig})
	svc := service("ns", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, httpPort(0))
	svc.UID, svc.ResourceVersion = "u1", "5"
	sl := slice("ns", "web", httpPort(0), ep("10.244.1.1", "node-a", true))
	sl.ResourceVersion = "7"
	first := p.buildOne(svc, []*discoveryv1.EndpointSlice{sl}, false, nil)
	if got := p.buildOne(svc, []*discoveryv1.EndpointSlice{sl}, false, first); got != first {
		t.Errorf("same versions: the rules were generated again")
	}
	changed := sl.DeepCopy()
	changed.ResourceVersion = "8"
	changed.Endpoints = append(changed.Endpoints, ep("10.244.1.2", "node-a", true))
	got := p.buildOne(svc, []*discoveryv1.EndpointSlice{changed}, false, first)
	if got == first || got.endpoints != 2 {
		t.Errorf("a new slice version: got the old rules (%d endpoints)", got.endpoints)
	}
	unversioned := svc.DeepCopy()
	unversioned.ResourceVersion = ""
	if got := p.buildOne(unversioned, []*discoveryv1.EndpointSlice{sl}, false, first); got == first {
		t.Errorf("objects without resourceVersion: the old rules were reused")
	}
}

// TestJumpsInOrder: a first sync into empty tables makes every jump from a
// built-in chain (side by side with iptables-legacy), each chain's jumps in
// upstream's order, and no other rule in the built-in chains.
func TestJumpsInOrder(t *testing.T) {
	want := map[string]map[string][]string{
		TableFilter: {
			"INPUT":   {ChainExternalServices},
			"FORWARD": {ChainForward, ChainServices, ChainExternalServices},
			"OUTPUT":  {ChainServices},
		},
		TableNAT: {
			"PREROUTING":  {ChainServices},
			"OUTPUT":      {ChainServices},
			"POSTROUTING": {ChainPostrouting},
		},
	}
	for _, legacy := range []bool{false, true} {
		name := map[bool]string{false: "nft", true: "legacy"}[legacy]
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(map[bool]string{false: "iptables-nft-restore", true: "iptables-legacy-restore"}[legacy]); err != nil {
				t.Skipf("no %s backend", name)
			}
			ns := netns(t, "jumps")
			c := newCache(t)
			c.legacy = legacy
			c.set(service("ns1", "web", "10.96.0.10", corev1.ServiceTypeClusterIP, httpPort(0)), false)
			syncOnce(t, c.proxier(ns), true)
			for table, chains := range want {
				out, err := (&Runner{NetNS: ns, Legacy: legacy}).Save(context.Background(), table)
				if err != nil {
					t.Fatal(err)
				}
				got := map[string][]string{}
				for _, line := range strings.Split(string(out), "\n") {
					f := strings.Fields(line)
					if len(f) < 2 || f[0] != "-A" || strings.HasPrefix(f[1], "KUBE-") {
						continue
					}
					got[f[1]] = append(got[f[1]], f[len(f)-1])
				}
				if diff := cmp.Diff(chains, got); diff != "" {
					t.Errorf("%s: jumps from the built-in chains (-want +got):\n%s", table, diff)
				}
			}
		})
	}
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// requireNetns skips unless the test can make network namespaces and run
// iptables inside them.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and programs iptables inside them")
	}
	for _, bin := range []string{"ip", "iptables", "iptables-restore", "iptables-save"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s", bin)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) for the backends' httpd")
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

const (
	dnsIP    = "169.254.20.10"
	dnsIface = "cxsdns"
)

// node is a network namespace playing a node: a LAN address, and a bridge
// br0 holding its pod range's first address.
type node struct {
	name, ns, lanIP, bridgeIP, podNet string
}

// pod is a network namespace on a node's bridge.
type pod struct {
	name, ns, ip string
	node         *node
}

// cluster is two nodes on a LAN (a bridge in its own namespace) with an
// outside client on it, host-gw routes between the nodes' pod ranges, and
// pods on the nodes' bridges. Backends serve their name over HTTP on :8080.
type cluster struct {
	nodes  []*node
	ext    string // the outside client's namespace
	pods   map[string]*pod
	prefix string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	prefix := fmt.Sprintf("cxp%d", os.Getpid()%100000)
	c := &cluster{prefix: prefix, pods: map[string]*pod{}}
	var created []string
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = exec.Command("ip", "netns", "del", created[i]).Run()
		}
	})
	addNS := func(ns string) {
		sh(t, "ip", "netns", "add", ns)
		created = append(created, ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	lan := prefix + "-lan"
	addNS(lan)
	sh(t, "ip", "-n", lan, "link", "add", "lan0", "type", "bridge")
	sh(t, "ip", "-n", lan, "link", "set", "lan0", "up")
	plug := func(ns, ip string, i int) { // a veth from ns's eth0 to the LAN bridge
		veth := fmt.Sprintf("l%d", i)
		sh(t, "ip", "-n", lan, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", lan, "link", "set", veth, "master", "lan0", "up")
		sh(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	}
	for i, name := range []string{"node-a", "node-b"} {
		n := &node{name: name, ns: fmt.Sprintf("%s-n%d", prefix, i), lanIP: fmt.Sprintf("192.168.77.%d", i+1),
			bridgeIP: fmt.Sprintf("10.250.%d.1", i+1), podNet: fmt.Sprintf("10.250.%d.0/24", i+1)}
		addNS(n.ns)
		plug(n.ns, n.lanIP, i)
		sh(t, "ip", "-n", n.ns, "link", "add", "br0", "type", "bridge")
		sh(t, "ip", "-n", n.ns, "addr", "add", n.bridgeIP+"/24", "dev", "br0")
		sh(t, "ip", "-n", n.ns, "link", "set", "br0", "up")
		// A default route out of the LAN, as a node has: ClusterIPs are
		// routed (then DNATed or rejected) like any other outside address.
		// (Through br0, a rejected pod's packet would go back out the way it
		// came, and the ICMP redirect would rate-limit the port unreachable.)
		sh(t, "ip", "-n", n.ns, "route", "add", "default", "via", "192.168.77.254")
		sh(t, "ip", "netns", "exec", n.ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
		c.nodes = append(c.nodes, n)
	}
	// host-gw: each node's pod range via that node's LAN address.
	sh(t, "ip", "-n", c.nodes[0].ns, "route", "add", c.nodes[1].podNet, "via", c.nodes[1].lanIP)
	sh(t, "ip", "-n", c.nodes[1].ns, "route", "add", c.nodes[0].podNet, "via", c.nodes[0].lanIP)
	c.ext = prefix + "-ext"
	addNS(c.ext)
	plug(c.ext, "192.168.77.100", 9)

	for i, p := range []struct {
		name string
		node int
		host int
	}{{"backend-1", 0, 11}, {"backend-2", 0, 12}, {"backend-3", 1, 11}, {"client", 0, 20}} {
		n := c.nodes[p.node]
		pd := &pod{name: p.name, ns: fmt.Sprintf("%s-p%d", prefix, i), ip: fmt.Sprintf("10.250.%d.%d", p.node+1, p.host), node: n}
		addNS(pd.ns)
		veth := fmt.Sprintf("vp%d", i)
		sh(t, "ip", "-n", n.ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pd.ns)
		sh(t, "ip", "-n", n.ns, "link", "set", veth, "master", "br0", "up")
		// As CNI's bridge plugin does: a pod reaching itself through a Service.
		sh(t, "ip", "-n", n.ns, "link", "set", veth, "type", "bridge_slave", "hairpin", "on")
		sh(t, "ip", "-n", pd.ns, "addr", "add", pd.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", pd.ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", pd.ns, "route", "add", "default", "via", n.bridgeIP)
		c.pods[p.name] = pd
		if !strings.HasPrefix(p.name, "backend") {
			continue
		}
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(p.name), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", pd.ns, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	return c
}

// dial connects from inside network namespace ns (the socket is made there).
func dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := nsexec.Do(nsexec.Path(ns), func() error {
		d := net.Dialer{Timeout: 3 * time.Second}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

func httpClient(ns string) *http.Client {
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true, // a new connection, so a new random choice, per request
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dial(ctx, ns, network, addr)
			},
		},
	}
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

// eventually polls f every 50 ms until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// objects creates Services and EndpointSlices through the apiserver.
type objects struct {
	t      *testing.T
	ctx    context.Context
	svcs   *client.Typed[*corev1.Service]
	slices *client.Typed[*discoveryv1.EndpointSlice]
}

func (o *objects) service(name string, edit func(*corev1.ServiceSpec)) *corev1.Service {
	o.t.Helper()
	spec := corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt(8080), Protocol: corev1.ProtocolTCP}}}
	if edit != nil {
		edit(&spec)
	}
	svc, err := o.svcs.Create(o.ctx, "default", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
	if err != nil {
		o.t.Fatalf("create service %s: %v", name, err)
	}
	return svc
}

func endpoint(p *pod, hostname string) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Addresses: []string{p.ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To(p.node.name)}
	if hostname != "" {
		e.Hostname = ptr.To(hostname)
	}
	return e
}

func (o *objects) slice(svc string, port discoveryv1.EndpointPort, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	o.t.Helper()
	s, err := o.slices.Create(o.ctx, "default", &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{port},
		Endpoints:   eps,
	})
	if err != nil {
		o.t.Fatalf("create endpointslice for %s: %v", svc, err)
	}
	return s
}

var httpEndpointPort = discoveryv1.EndpointPort{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}

// startProxy runs kube-proxy in-process for node n.
func startProxy(t *testing.T, ctx context.Context, env *harness.Env, n *node) *Server {
	t.Helper()
	o := NewOptions()
	o.Kubeconfig = env.Kubeconfig
	o.HostnameOverride = n.name
	o.NetNS = nsexec.Path(n.ns)
	o.ClusterCIDR = "10.250.0.0/16"
	o.MinSyncPeriod = 100 * time.Millisecond
	o.DNSBind, o.DNSPort, o.DNSInterface = dnsIP, 53, dnsIface
	o.HealthzBindAddress, o.HealthzPort = "127.0.0.1", 0
	o.MetricsBindAddress, o.MetricsPort = "127.0.0.1", 0
	s, err := Start(ctx, o, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Named(n.name))
	if err != nil {
		t.Fatalf("start kube-proxy on %s: %v", n.name, err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	eventually(t, 20*time.Second, "first sync on "+n.name, func() error {
		if ok, last := s.Proxier.Healthy(time.Minute); !ok || last.IsZero() {
			return errors.New("not synced")
		}
		return nil
	})
	return s
}

// TestServicesInNetns runs two kube-proxies, one per "node" namespace,
// against a real apiserver, and checks Services end to end with real
// iptables: load balancing, NodePorts on every node, ClientIP affinity,
// rejects, hairpin, DNS from a pod, UDP conntrack clean-up, a restart under
// load, rules of others left alone, and --cleanup.
func TestServicesInNetns(t *testing.T) {
	requireNetns(t)
	parent := t
	c := newCluster(t)
	nodeA := c.nodes[0]
	// A rule and a chain of someone else's that must survive everything.
	sh(t, "ip", "netns", "exec", nodeA.ns, "iptables", "-t", "nat", "-N", "OTHER-OWNER")
	sh(t, "ip", "netns", "exec", nodeA.ns, "iptables", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "OTHER-OWNER")

	env := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	obj := &objects{t: t, ctx: ctx, svcs: client.For[*corev1.Service](env.Client), slices: client.For[*discoveryv1.EndpointSlice](env.Client)}
	b1, b2, b3, cl := c.pods["backend-1"], c.pods["backend-2"], c.pods["backend-3"], c.pods["client"]

	web := obj.service("web", func(s *corev1.ServiceSpec) { s.Type = corev1.ServiceTypeNodePort })
	webSlice := obj.slice("web", httpEndpointPort, endpoint(b1, ""), endpoint(b2, ""), endpoint(b3, ""))
	sticky := obj.service("sticky", func(s *corev1.ServiceSpec) {
		s.SessionAffinity = corev1.ServiceAffinityClientIP
		s.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To[int32](600)}}
	})
	obj.slice("sticky", httpEndpointPort, endpoint(b1, ""), endpoint(b2, ""), endpoint(b3, ""))
	empty := obj.service("empty", nil)
	self := obj.service("self", nil)
	obj.slice("self", httpEndpointPort, endpoint(b1, ""))
	obj.service("db", func(s *corev1.ServiceSpec) {
		s.ClusterIP = corev1.ClusterIPNone
		s.Ports = []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}
	})
	obj.slice("db", discoveryv1.EndpointPort{Name: ptr.To("pg"), Port: ptr.To[int32](5432), Protocol: ptr.To(corev1.ProtocolTCP)}, endpoint(b1, "db-0"), endpoint(b2, ""))
	udp := obj.service("echo", func(s *corev1.ServiceSpec) {
		s.Ports = []corev1.ServicePort{{Name: "echo", Port: 53, TargetPort: intstr.FromInt(5353), Protocol: corev1.ProtocolUDP}}
	})
	udpPort := discoveryv1.EndpointPort{Name: ptr.To("echo"), Port: ptr.To[int32](5353), Protocol: ptr.To(corev1.ProtocolUDP)}
	udpSlice := obj.slice("echo", udpPort, endpoint(b1, ""))

	proxyA := startProxy(t, ctx, env, nodeA)
	startProxy(t, ctx, env, c.nodes[1])

	webURL := "http://" + net.JoinHostPort(web.Spec.ClusterIP, "80") + "/"
	fromClient := httpClient(cl.ns)
	eventually(t, 15*time.Second, "ClusterIP "+webURL+" answers", func() error { _, err := get(fromClient, webURL); return err })

	t.Run("ClusterIPReachesEveryBackend", func(t *testing.T) {
		hits := map[string]int{}
		for i := range 300 {
			body, err := get(fromClient, webURL)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			hits[body]++
		}
		t.Logf("hits over 300 requests: %v", hits)
		for _, p := range []*pod{b1, b2, b3} {
			if hits[p.name] == 0 {
				t.Errorf("%s (on %s) got none of 300 requests (hits %v)", p.name, p.node.name, hits)
			}
		}
		if len(hits) != 3 {
			t.Errorf("answers from %v, want only the three backends", hits)
		}
	})

	t.Run("NodePortOnEveryNode", func(t *testing.T) {
		fromOutside := httpClient(c.ext)
		nodePort := fmt.Sprint(web.Spec.Ports[0].NodePort)
		for _, n := range c.nodes {
			url := "http://" + net.JoinHostPort(n.lanIP, nodePort) + "/"
			seen := map[string]bool{}
			for i := range 30 {
				body, err := get(fromOutside, url)
				if err != nil {
					t.Fatalf("NodePort %s, request %d: %v", url, i, err)
				}
				seen[body] = true
			}
			t.Logf("NodePort %s (%s) answered from %v", url, n.name, slices.Sorted(mapsKeys(seen)))
		}
	})

	t.Run("ClientIPAffinitySticks", func(t *testing.T) {
		url := "http://" + net.JoinHostPort(sticky.Spec.ClusterIP, "80") + "/"
		first, err := get(fromClient, url)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			body, err := get(fromClient, url)
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if body != first {
				t.Fatalf("request %d went to %s, the first to %s: affinity did not stick", i, body, first)
			}
		}
	})

	t.Run("NoEndpointsRejectedAtOnce", func(t *testing.T) {
		start := time.Now()
		conn, err := dial(ctx, cl.ns, "tcp", net.JoinHostPort(empty.Spec.ClusterIP, "80"))
		took := time.Since(start)
		if err == nil {
			conn.Close()
			t.Fatal("connected to a service without endpoints")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || took > time.Second {
			t.Errorf("got %v after %v, want connection refused at once", err, took)
		}
	})

	t.Run("Hairpin", func(t *testing.T) {
		url := "http://" + net.JoinHostPort(self.Spec.ClusterIP, "80") + "/"
		for i := range 5 {
			body, err := get(httpClient(b1.ns), url)
			if err != nil || body != b1.name {
				t.Fatalf("request %d from %s to its own service: %q, %v", i, b1.name, body, err)
			}
		}
	})

	t.Run("DNSFromPod", func(t *testing.T) {
		rev := func(ip string) string { n, _ := mdns.ReverseAddr(ip); return n }
		for _, tc := range []struct {
			name  string
			qtype uint16
			rcode int
			want  []string
			some  bool // want is a subset of the answers
		}{
			{"web.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{web.Spec.ClusterIP}, false},
			{"db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{b1.ip, b2.ip}, false},
			{"db-0.db.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{b1.ip}, false},
			{strings.ReplaceAll(b2.ip, ".", "-") + ".default.pod.cluster.local.", mdns.TypeA, mdns.RcodeSuccess, []string{b2.ip}, false},
			{"_http._tcp.web.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"web.default.svc.cluster.local.:80"}, false},
			{"_pg._tcp.db.default.svc.cluster.local.", mdns.TypeSRV, mdns.RcodeSuccess, []string{"db-0.db.default.svc.cluster.local.:5432", strings.ReplaceAll(b2.ip, ".", "-") + ".db.default.svc.cluster.local.:5432"}, false},
			{rev(web.Spec.ClusterIP), mdns.TypePTR, mdns.RcodeSuccess, []string{"web.default.svc.cluster.local."}, false},
			// A pod IP behind several Services has a name in each.
			{rev(b1.ip), mdns.TypePTR, mdns.RcodeSuccess, []string{"db-0.db.default.svc.cluster.local.", strings.ReplaceAll(b1.ip, ".", "-") + ".web.default.svc.cluster.local."}, true},
			{"nope.default.svc.cluster.local.", mdns.TypeA, mdns.RcodeNameError, nil, false},
			{"example.com.", mdns.TypeA, mdns.RcodeRefused, nil, false},
		} {
			r, err := queryFrom(ctx, cl.ns, tc.name, tc.qtype)
			if err != nil {
				t.Errorf("%s %s: %v", tc.name, mdns.TypeToString[tc.qtype], err)
				continue
			}
			var got []string
			for _, rr := range r.Answer {
				switch v := rr.(type) {
				case *mdns.A:
					got = append(got, v.A.String())
				case *mdns.SRV:
					got = append(got, fmt.Sprintf("%s:%d", v.Target, v.Port))
				case *mdns.PTR:
					got = append(got, v.Ptr)
				}
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tc.want))
			match := slices.Equal(got, want)
			if tc.some {
				match = len(got) > 0
				for _, w := range want {
					match = match && slices.Contains(got, w)
				}
			}
			if r.Rcode != tc.rcode || !match {
				t.Errorf("%s %s: got %s %v, want %s %v", tc.name, mdns.TypeToString[tc.qtype], mdns.RcodeToString[r.Rcode], got, mdns.RcodeToString[tc.rcode], want)
			}
		}
	})

	t.Run("UDPConntrackOfRemovedEndpointFlushed", func(t *testing.T) {
		for _, p := range []*pod{b1, b2} {
			udpEcho(t, p)
		}
		// One client socket: every datagram has the same 5-tuple, so only a
		// deleted conntrack entry lets the next one reach another endpoint.
		conn, err := dial(ctx, cl.ns, "udp", net.JoinHostPort(udp.Spec.ClusterIP, "53"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ask := func() (string, error) {
			if _, err := conn.Write([]byte("who")); err != nil {
				return "", err
			}
			_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			buf := make([]byte, 64)
			n, err := conn.Read(buf)
			return string(buf[:n]), err
		}
		eventually(t, 10*time.Second, "UDP service answers from backend-1", func() error {
			if got, err := ask(); err != nil || got != b1.name {
				return fmt.Errorf("got %q, %v", got, err)
			}
			return nil
		})
		udpSlice.Endpoints = []discoveryv1.Endpoint{endpoint(b2, "")}
		if _, err := obj.slices.Update(ctx, "default", udpSlice); err != nil {
			t.Fatal(err)
		}
		// backend-1 still answers on its own address: without the flush the
		// old entry would keep sending this flow there for as long as it is used.
		eventually(t, 10*time.Second, "the same UDP flow moves to backend-2", func() error {
			if got, err := ask(); err != nil || got != b2.name {
				return fmt.Errorf("got %q, %v", got, err)
			}
			return nil
		})
	})

	t.Run("PartialSyncAfterEndpointChange", func(t *testing.T) {
		webSlice.Endpoints = []discoveryv1.Endpoint{endpoint(b1, ""), endpoint(b2, "")}
		if _, err := obj.slices.Update(ctx, "default", webSlice); err != nil {
			t.Fatal(err)
		}
		eventually(t, 10*time.Second, "web's rules drop backend-3", func() error {
			last := proxyA.Proxier.LastSync()
			if last.Full || !strings.Contains(string(last.Restore), "default/web:http") {
				return errors.New("no partial sync of web yet")
			}
			return nil
		})
		last := proxyA.Proxier.LastSync()
		if strings.Contains(string(last.Restore), ":KUBE-SERVICES") || strings.Contains(string(last.Restore), "sticky") {
			t.Errorf("an endpoint change of web rewrote other chains:\n%s", last.Restore)
		}
		hits := map[string]int{}
		for range 40 {
			body, err := get(fromClient, webURL)
			if err != nil {
				t.Fatal(err)
			}
			hits[body]++
		}
		if hits[b3.name] != 0 || hits[b1.name] == 0 || hits[b2.name] == 0 {
			t.Errorf("after removing backend-3: hits %v", hits)
		}
	})

	t.Run("RestartDropsNoConnection", func(t *testing.T) {
		loopCtx, stopLoop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var ok, failed int
		var firstErr error
		wg.Go(func() {
			for loopCtx.Err() == nil {
				_, err := get(fromClient, webURL)
				mu.Lock()
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					ok++
				}
				mu.Unlock()
			}
		})
		defer func() { stopLoop(); wg.Wait() }()
		served := func(n int) func() error {
			return func() error {
				mu.Lock()
				defer mu.Unlock()
				if ok < n {
					return fmt.Errorf("%d requests done", ok)
				}
				return nil
			}
		}
		eventually(t, 10*time.Second, "requests before the restart", served(20))
		if err := proxyA.Stop(); err != nil {
			t.Fatal(err)
		}
		proxyA = startProxy(parent, ctx, env, nodeA)
		if last := proxyA.Proxier.LastSync(); !last.Full {
			t.Errorf("the restarted proxy's first sync was not a full one")
		}
		mu.Lock()
		target := ok + 20
		mu.Unlock()
		eventually(t, 10*time.Second, "requests after the restart", served(target))
		stopLoop()
		wg.Wait()
		t.Logf("%d requests succeeded, %d failed across the restart", ok, failed)
		if failed > 0 {
			t.Errorf("%d of %d requests failed across the restart; first: %v", failed, ok+failed, firstErr)
		}
	})

	t.Run("MetricsAndHealth", func(t *testing.T) {
		resp, err := http.Get("http://" + proxyA.HealthzAddress + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz: %v %v", resp, err)
		}
		resp.Body.Close()
		resp, err = http.Get("http://" + proxyA.MetricsAddress + "/metrics")
		if err != nil {
			t.Fatalf("/metrics: %v", err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{
			"kubeproxy_sync_proxy_rules_duration_seconds_bucket", "kubeproxy_sync_full_proxy_rules_duration_seconds_count",
			"kubeproxy_sync_proxy_rules_last_timestamp_seconds", `kubeproxy_sync_proxy_rules_iptables_total{table="nat"}`,
		} {
			if !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})

	t.Run("CleanupRemovesEverything", func(t *testing.T) {
		if err := proxyA.Stop(); err != nil {
			t.Fatal(err)
		}
		bin := harness.BuildBinary(t, "github.com/coxswain/coxswain/kube-proxy/cmd/kube-proxy")
		out, err := exec.Command("ip", "netns", "exec", nodeA.ns, bin, "--cleanup", "--dns-interface", dnsIface, "--dns-bind", dnsIP).CombinedOutput()
		if err != nil {
			t.Fatalf("kube-proxy --cleanup: %v\n%s", err, out)
		}
		runner := &iptables.Runner{NetNS: nsexec.Path(nodeA.ns)}
		for _, table := range []string{"nat", "filter"} {
			save, err := runner.Save(ctx, table)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(save), "KUBE-") {
				t.Errorf("%s table still holds KUBE- rules after --cleanup:\n%s", table, save)
			}
			if table == "nat" && (!strings.Contains(string(save), ":OTHER-OWNER") || !strings.Contains(string(save), "-s 10.99.0.0/16 -j OTHER-OWNER")) {
				t.Errorf("someone else's chain or rule is gone:\n%s", save)
			}
		}
		if out, err := exec.Command("ip", "-n", nodeA.ns, "-o", "addr").CombinedOutput(); err != nil || strings.Contains(string(out), dnsIface) || strings.Contains(string(out), dnsIP) {
			t.Errorf("the DNS interface or address is still there (%v):\n%s", err, out)
		}
	})
}

func mapsKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// queryFrom sends a DNS query over UDP from namespace ns to the node-local DNS.
func queryFrom(ctx context.Context, ns, name string, qtype uint16) (*mdns.Msg, error) {
	conn, err := dial(ctx, ns, "udp", net.JoinHostPort(dnsIP, "53"))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	co := &mdns.Conn{Conn: conn}
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// udpEcho answers every datagram to p's :5353 with p's name until the test ends.
func udpEcho(t *testing.T, p *pod) {
	t.Helper()
	var pc net.PacketConn
	if err := nsexec.Do(nsexec.Path(p.ns), func() error {
		var err error
		pc, err = net.ListenPacket("udp", ":5353")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo([]byte(p.name), from)
		}
	}()
	t.Cleanup(func() { _ = pc.Close(); <-done })
}

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
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

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

// topology is a "node" namespace with a bridge and backend namespaces
// hanging off it, each serving HTTP on :8080 with its own name.
type topology struct {
	node     string
	backends map[string]string // name -> IP
}

func newTopology(t *testing.T, n int) *topology {
	t.Helper()
	prefix := fmt.Sprintf("cxs%d", os.Getpid()%100000)
	tp := &topology{node: prefix + "-node", backends: map[string]string{}}
	var created []string
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = exec.Command("ip", "netns", "del", created[i]).Run()
		}
	})
	add := func(ns string) {
		sh(t, "ip", "netns", "add", ns)
		created = append(created, ns)
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
	add(tp.node)
	sh(t, "ip", "-n", tp.node, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", tp.node, "addr", "add", "10.250.1.1/24", "dev", "br0")
	sh(t, "ip", "-n", tp.node, "link", "set", "br0", "up")
	// ClusterIPs are routed towards the bridge, as a node's default route would.
	sh(t, "ip", "-n", tp.node, "route", "add", "10.96.0.0/12", "dev", "br0")
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("backend-%d", i)
		ns := fmt.Sprintf("%s-b%d", prefix, i)
		ip := fmt.Sprintf("10.250.1.%d", 10+i)
		add(ns)
		veth := fmt.Sprintf("vb%d", i)
		sh(t, "ip", "-n", tp.node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", tp.node, "link", "set", veth, "master", "br0", "up")
		sh(t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "route", "add", "default", "via", "10.250.1.1")
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, "/bin/busybox", "httpd", "-f", "-p", "8080", "-h", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		tp.backends[name] = ip
	}
	return tp
}

// dial connects from inside namespace ns (the socket is made on a locked
// thread switched into it, and stays there).
func dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked if switching back fails: the thread dies with the goroutine
		orig, err := netns.Get()
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromName(ns)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			ch <- result{nil, err}
			return
		}
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err := d.DialContext(ctx, network, addr)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
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

func TestClusterIPInNetns(t *testing.T) {
	requireNetns(t)
	tp := newTopology(t, 3)
	env := harness.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	svc, err := client.For[*corev1.Service](env.Client).Create(ctx, "default", &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt(8080), Protocol: corev1.ProtocolTCP}}},
	})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	var eps []discoveryv1.Endpoint
	for _, ip := range tp.backends {
		eps = append(eps, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}, NodeName: ptr.To("node-a")})
	}
	slices := client.For[*discoveryv1.EndpointSlice](env.Client)
	slice, err := slices.Create(ctx, "default", &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints:   eps,
	})
	if err != nil {
		t.Fatalf("create endpointslice: %v", err)
	}

	runner := &iptables.Runner{Prefix: []string{"ip", "netns", "exec", tp.node}}
	o := NewOptions()
	o.Kubeconfig = env.Kubeconfig
	o.HostnameOverride = "node-a"
	o.MinSyncPeriod = 100 * time.Millisecond
	o.DNSBind, o.DNSPort = "127.0.0.1", 0
	o.HealthzBindAddress, o.HealthzPort = "127.0.0.1", 0
	o.MetricsBindAddress, o.MetricsPort = "127.0.0.1", 0
	o.Runner = runner
	s, err := Start(ctx, o, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatalf("start kube-proxy: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })

	url := "http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/"
	c := httpClient(tp.node)
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := get(c, url); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("ClusterIP %s never answered: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	hits := map[string]int{}
	for i := range 300 {
		body, err := get(c, url)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		hits[body]++
	}
	t.Logf("hits over 300 requests: %v", hits)
	for name := range tp.backends {
		if hits[name] == 0 {
			t.Errorf("backend %s got no request of 300 (hits %v)", name, hits)
		}
	}
	if len(hits) != len(tp.backends) {
		t.Errorf("answers from %v, want only the backends", hits)
	}

	// Health, metrics and DNS of the running proxy.
	if resp, err := http.Get("http://" + s.HealthzAddress + "/healthz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get("http://" + s.MetricsAddress + "/metrics")
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"kubeproxy_sync_proxy_rules_duration_seconds_bucket", "kubeproxy_sync_proxy_rules_last_timestamp_seconds", `kubeproxy_sync_proxy_rules_iptables_total{table="nat"}`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	m := new(mdns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", mdns.TypeA)
	if r, err := mdns.Exchange(m, s.DNSAddress); err != nil {
		t.Errorf("dns: %v", err)
	} else if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != svc.Spec.ClusterIP {
		t.Errorf("dns answer for web.default.svc.cluster.local: got %v, want A %s", r.Answer, svc.Spec.ClusterIP)
	}

	// No endpoints: connections are refused at once (REJECT), not timed out.
	slice.Endpoints = nil
	if _, err := slices.Update(ctx, "default", slice); err != nil {
		t.Fatalf("update endpointslice: %v", err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		start := time.Now()
		conn, err := dial(ctx, tp.node, "tcp", net.JoinHostPort(svc.Spec.ClusterIP, "80"))
		took := time.Since(start)
		if err == nil {
			conn.Close()
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			if took > time.Second {
				t.Errorf("refusal took %v, want immediate", took)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("service without endpoints was not rejected: last dial error %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// --cleanup removes every chain of ours from the namespace.
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := iptables.Cleanup(ctx, runner); err != nil {
		t.Fatalf("cleanup: %v", err)
	}
	for _, table := range []string{"nat", "filter"} {
		out, err := runner.Save(ctx, table)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "KUBE-") {
			t.Errorf("%s table still holds KUBE- rules after cleanup:\n%s", table, out)
		}
	}
}

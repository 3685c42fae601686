package integration

import (
	"net"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

func svc(name string, typ corev1.ServiceType) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
}

// 100 concurrent creates get 100 distinct ClusterIPs, none of them the
// kubernetes Service's, and a restart on the same data keeps them taken.
func TestClusterIPAllocation(t *testing.T) {
	dir := t.TempDir()
	env := harness.Start(t, harness.WithDataDir(dir), harness.WithServiceRange("10.0.0.0/24"))
	ctx := ctxT(t)
	svcs := client.For[*corev1.Service](env.Client)

	kube, err := svcs.Get(ctx, "default", "kubernetes")
	if err != nil {
		t.Fatalf("kubernetes service: %v", err)
	}
	if kube.Spec.ClusterIP != "10.0.0.1" {
		t.Fatalf("kubernetes service ClusterIP = %s, want 10.0.0.1", kube.Spec.ClusterIP)
	}
	const n = 100
	ips := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := svcs.Create(ctx, "default", svc("s"+itoa(i), corev1.ServiceTypeNodePort))
			if err != nil {
				errs <- err
				return
			}
			ips[i] = s.Spec.ClusterIP
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
	seen := map[string]bool{"10.0.0.1": true}
	_, cidr, _ := net.ParseCIDR("10.0.0.0/24")
	for i, ip := range ips {
		if seen[ip] {
			t.Fatalf("service %d got ClusterIP %s twice", i, ip)
		}
		if !cidr.Contains(net.ParseIP(ip)) {
			t.Fatalf("ClusterIP %s outside the range", ip)
		}
		seen[ip] = true
	}
	all, _, err := svcs.List(ctx, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports := map[int32]string{}
	for _, s := range all {
		for _, p := range s.Spec.Ports {
			if p.NodePort == 0 {
				continue
			}
			if other, dup := ports[p.NodePort]; dup {
				t.Fatalf("NodePort %d given to %s and %s", p.NodePort, other, s.Name)
			}
			ports[p.NodePort] = s.Name
		}
	}
	if len(ports) != n {
		t.Fatalf("%d NodePorts allocated, want %d", len(ports), n)
	}

	// A requested IP that is taken is refused with the field named.
	taken := svc("taken", corev1.ServiceTypeClusterIP)
	taken.Spec.ClusterIP = ips[0]
	_, err = svcs.Create(ctx, "default", taken)
	if st := statusOf(err); st.Code != 422 || st.Details == nil || len(st.Details.Causes) == 0 || st.Details.Causes[0].Field != "spec.clusterIPs[0]" {
		t.Fatalf("create with a taken IP: %v, want 422 on spec.clusterIPs[0]", err)
	}

	// Deleting releases the IP: it can be asked for again.
	if _, err := svcs.Delete(ctx, "default", "s0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again := svc("again", corev1.ServiceTypeClusterIP)
	again.Spec.ClusterIP = ips[0]
	if _, err := svcs.Create(ctx, "default", again); err != nil {
		t.Fatalf("reuse released IP: %v", err)
	}

	// After a restart on the same data, allocations stay unique.
	env2 := restart(t, env, dir, harness.WithServiceRange("10.0.0.0/24"))
	svcs2 := client.For[*corev1.Service](env2.Client)
	for i := 0; i < 20; i++ {
		s, err := svcs2.Create(ctx, "default", svc("post"+itoa(i), corev1.ServiceTypeClusterIP))
		if err != nil {
			t.Fatalf("create after restart: %v", err)
		}
		if seen[s.Spec.ClusterIP] && s.Spec.ClusterIP != ips[0] {
			t.Fatalf("after restart, ClusterIP %s was given twice", s.Spec.ClusterIP)
		}
		if s.Spec.ClusterIP == ips[0] {
			t.Fatalf("after restart, %s reused the IP of service 'again'", s.Spec.ClusterIP)
		}
		seen[s.Spec.ClusterIP] = true
	}
	if _, err := svcs2.Create(ctx, "default", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bad"}, Spec: corev1.ServiceSpec{ClusterIP: "10.9.9.9", Ports: []corev1.ServicePort{{Port: 1}}}}); !apierrors.IsInvalid(err) {
		t.Fatalf("out-of-range IP: %v, want Invalid", err)
	}
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

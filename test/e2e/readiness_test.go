//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// testReadinessGatesEndpoints runs a pod whose exec readiness probe fails
// until a file exists, behind a Service: while the probe fails the pod is
// not a ready endpoint of the Service's EndpointSlice (upstream lists it
// with ready=false) and the pod's Ready condition is False; once the file
// is written (kubectl exec) the probe passes and the slice turns the
// endpoint ready, then back when the file goes.
func testReadinessGatesEndpoints(t *testing.T, c *cluster) {
	ns := c.namespace(t, "e2e-ready")
	p := c.shellPod("gated", "", map[string]string{"app": "gated"}, corev1.RestartPolicyAlways,
		`mkdir -p /www && echo gated >/www/index.html && exec httpd -f -p 8080 -h /www`)
	p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/tmp/ready"}}},
		PeriodSeconds:    1,
		FailureThreshold: 1,
	}
	svc := &corev1.Service{
		TypeMeta:   typeMeta("Service", "v1"),
		ObjectMeta: metav1.ObjectMeta{Name: "gated"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "gated"},
			Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
		},
	}
	c.apply(t, ns, p, svc)

	// endpoint reports the pod's endpoint in the slices: found, and ready.
	endpoint := func(podIP string) (found, ready bool, err error) {
		var l discoveryv1.EndpointSliceList
		if err := c.getJSON(&l, "get", "endpointslices", "-n", ns, "-l", discoveryv1.LabelServiceName+"=gated"); err != nil {
			return false, false, err
		}
		for _, sl := range l.Items {
			for _, e := range sl.Endpoints {
				if len(e.Addresses) > 0 && e.Addresses[0] == podIP {
					return true, e.Conditions.Ready == nil || *e.Conditions.Ready, nil
				}
			}
		}
		return false, false, nil
	}
	var pod corev1.Pod
	waitFor(t, "gated running with an IP", 2*time.Minute, func() (bool, string) {
		if err := c.getJSON(&pod, "get", "pod", "-n", ns, "gated"); err != nil {
			return false, err.Error()
		}
		return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "", string(pod.Status.Phase)
	})
	// Listed, not ready: the probe has run and failed (several periods).
	waitFor(t, "gated listed as a not-ready endpoint", time.Minute, func() (bool, string) {
		found, ready, err := endpoint(pod.Status.PodIP)
		if err != nil {
			return false, err.Error()
		}
		return found && !ready, fmt.Sprintf("found %v ready %v", found, ready)
	})
	// Consistently so for three probe periods: each poll is an assertion.
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); time.Sleep(250 * time.Millisecond) {
		if err := c.getJSON(&pod, "get", "pod", "-n", ns, "gated"); err != nil {
			t.Fatal(err)
		}
		if podReady(&pod) {
			t.Fatalf("gated is Ready while its readiness probe fails: %+v", pod.Status.Conditions)
		}
		if _, ready, err := endpoint(pod.Status.PodIP); err != nil || ready {
			t.Fatalf("gated is a ready endpoint while its probe fails (%v)", err)
		}
	}

	c.must(t, "exec", "-n", ns, "gated", "--", "touch", "/tmp/ready")
	waitFor(t, "gated a ready endpoint after its probe passes", time.Minute, func() (bool, string) {
		found, ready, err := endpoint(pod.Status.PodIP)
		if err != nil {
			return false, err.Error()
		}
		return found && ready, fmt.Sprintf("found %v ready %v", found, ready)
	})
	out := c.must(t, "get", "pod", "-n", ns, "gated", "--no-headers")
	if f := strings.Fields(out); len(f) < 2 || f[1] != "1/1" {
		t.Errorf("kubectl get pod gated: %q, want READY 1/1", out)
	}

	c.must(t, "exec", "-n", ns, "gated", "--", "rm", "/tmp/ready")
	waitFor(t, "gated not ready again after the file goes", time.Minute, func() (bool, string) {
		found, ready, err := endpoint(pod.Status.PodIP)
		if err != nil {
			return false, err.Error()
		}
		return found && !ready, fmt.Sprintf("found %v ready %v", found, ready)
	})
}

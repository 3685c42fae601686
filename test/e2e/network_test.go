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

// serverScript serves "<name> <hostname>" on :8080 with busybox httpd.
const serverScript = `mkdir -p /www && echo "$SERVER_NAME $(hostname)" >/www/index.html && exec httpd -f -p 8080 -h /www`

// testPodNetworking runs an HTTP server pod on every node, each behind a
// ClusterIP Service, and from a client pod on every node fetches every
// other node's server by pod IP, by ClusterIP and by the Service's DNS name
// (the node-local DNS of kube-proxy). The host also reaches every server by
// pod IP (the host-gw routes).
func testPodNetworking(t *testing.T, c *cluster) {
	ns := c.namespace(t, "e2e-net")
	var objs []any
	for _, n := range c.nodes {
		name := "srv-" + n.name
		p := c.shellPod(name, n.name, map[string]string{"srv": name}, corev1.RestartPolicyAlways, serverScript)
		p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "SERVER_NAME", Value: name}}
		p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}},
			PeriodSeconds: 1,
		}
		objs = append(objs, p, &corev1.Service{
			TypeMeta:   typeMeta("Service", "v1"),
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"srv": name},
				Ports:    []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}},
			},
		})
	}
	c.apply(t, ns, objs...)

	type server struct{ name, node, podIP, clusterIP string }
	servers := map[string]*server{}
	waitFor(t, "a Ready server pod on every node", 3*time.Minute, func() (bool, string) {
		pods, err := c.pods(ns, "srv")
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods {
			if podReady(&p) && p.Status.PodIP != "" {
				servers[p.Name] = &server{name: p.Name, node: p.Spec.NodeName, podIP: p.Status.PodIP}
			}
		}
		return len(servers) == len(c.nodes), podSummary(pods)
	})
	for _, s := range servers {
		if want := strings.TrimPrefix(s.name, "srv-"); s.node != want {
			t.Errorf("pod %s runs on %q, want %q (nodeSelector)", s.name, s.node, want)
		}
		var svc corev1.Service
		if err := c.getJSON(&svc, "get", "service", "-n", ns, s.name); err != nil {
			t.Fatal(err)
		}
		s.clusterIP = svc.Spec.ClusterIP
		waitFor(t, "EndpointSlice of "+s.name+" with "+s.podIP, 2*time.Minute, func() (bool, string) {
			var l discoveryv1.EndpointSliceList
			if err := c.getJSON(&l, "get", "endpointslices", "-n", ns, "-l", discoveryv1.LabelServiceName+"="+s.name); err != nil {
				return false, err.Error()
			}
			for _, sl := range l.Items {
				for _, e := range sl.Endpoints {
					if len(e.Addresses) > 0 && e.Addresses[0] == s.podIP && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
						return true, ""
					}
				}
			}
			return false, fmt.Sprintf("%d slices without a ready %s", len(l.Items), s.podIP)
		})
	}

	// The host reaches every pod through the host-gw routes.
	for _, s := range servers {
		u := "http://" + s.podIP + ":8080/"
		waitFor(t, "the host reaches "+s.name+" at "+u, time.Minute, func() (bool, string) {
			body, err := httpGet(u)
			return err == nil && strings.HasPrefix(body, s.name+" "), fmt.Sprint(body, err)
		})
	}

	var clients []*corev1.Pod
	want := 0
	for _, n := range c.nodes {
		var script strings.Builder
		script.WriteString(fetchScript)
		for _, s := range servers {
			if s.node == n.name {
				continue
			}
			fmt.Fprintf(&script, "check pod-ip %s http://%s:8080/\n", s.name, s.podIP)
			fmt.Fprintf(&script, "check cluster-ip %s http://%s/\n", s.name, s.clusterIP)
			fmt.Fprintf(&script, "check dns %s http://%s.%s.svc.cluster.local/\n", s.name, s.name, ns)
			want += 3
		}
		script.WriteString("exit $failed\n")
		clients = append(clients, c.shellPod("client-"+n.name, n.name, nil, corev1.RestartPolicyNever, script.String()))
	}
	logs := c.runToCompletion(t, ns, 5*time.Minute, clients...)
	checkPassLines(t, logs, want)
}

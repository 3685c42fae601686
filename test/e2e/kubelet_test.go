//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testKubeletKilled runs a 3-replica Deployment spread over the nodes, kills
// (SIGKILL) the kubelet of a node running one of its pods, and expects the
// node to turn NotReady (Unknown) and its pods to be evicted and replaced on
// the other nodes. Its pods tolerate the unreachable/not-ready taints for
// 10s only (upstream's default is 300s). Then the kubelet starts again,
// the node is Ready, and the evicted pods are gone.
func testKubeletKilled(t *testing.T, c *cluster) {
	ns := c.namespace(t, "e2e-kubelet")
	labels := map[string]string{"app": "survivor"}
	tolerate := []corev1.Toleration{
		{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(10))},
		{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(10))},
	}
	d := &appsv1.Deployment{
		TypeMeta:   typeMeta("Deployment", "apps/v1"),
		ObjectMeta: metav1.ObjectMeta{Name: "survivor"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(2)),
					Tolerations:                   tolerate,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
						MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.ScheduleAnyway,
						LabelSelector: &metav1.LabelSelector{MatchLabels: labels},
					}},
					Containers: []corev1.Container{{Name: "main", Image: c.busybox(), Command: []string{"sleep", "100000"}}},
				},
			},
		},
	}
	c.apply(t, ns, d)
	waitFor(t, "deployment survivor rolled out", 5*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "survivor") })
	pods, err := c.pods(ns, "app=survivor")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("survivor pods: %s", podSummary(pods))

	// The victim runs a survivor pod and, if it can be helped, not the
	// guestbook's redis master (whose data the control plane test reads).
	master := map[string]bool{}
	if gm, err := c.pods(guestbookNamespace, "role=master"); err == nil {
		for _, p := range gm {
			master[p.Spec.NodeName] = true
		}
	}
	var victim *node
	for i := len(c.nodes) - 1; i >= 0; i-- {
		n := &c.nodes[i]
		hosts := false
		for _, p := range pods {
			hosts = hosts || p.Spec.NodeName == n.name
		}
		if hosts && (victim == nil || !master[n.name]) {
			victim = n
			if !master[n.name] {
				break
			}
		}
	}
	if victim == nil {
		t.Fatalf("no node runs a survivor pod: %s", podSummary(pods))
	}
	var victimPods []string
	for _, p := range pods {
		if p.Spec.NodeName == victim.name {
			victimPods = append(victimPods, p.Name)
		}
	}
	kubelet := "w" + victim.worker + "-kubelet"
	t.Logf("killing %s (node %s, runs %v; kubelet log %s/%s.log)", kubelet, victim.name, victimPods, c.logs, kubelet)
	c.clusterScript(t, "kill", kubelet)
	restarted := false
	restart := func() {
		if restarted {
			return
		}
		restarted = true
		c.clusterScript(t, "start", kubelet)
	}
	t.Cleanup(restart)

	waitFor(t, "node "+victim.name+" NotReady", 3*time.Minute, func() (bool, string) {
		var n corev1.Node
		if err := c.getJSON(&n, "get", "node", victim.name); err != nil {
			return false, err.Error()
		}
		s := nodeReadyStatus(&n)
		return s != corev1.ConditionTrue, fmt.Sprintf("Ready=%s taints=%v", s, n.Spec.Taints)
	})
	waitFor(t, "3 Ready survivor pods on the other nodes, the victim's evicted", 5*time.Minute, func() (bool, string) {
		pods, err := c.pods(ns, "app=survivor")
		if err != nil {
			return false, err.Error()
		}
		ready, evicted := 0, 0
		for _, p := range pods {
			if p.Spec.NodeName == victim.name {
				if p.DeletionTimestamp != nil {
					evicted++
				}
				continue
			}
			if p.DeletionTimestamp == nil && podReady(&p) {
				ready++
			}
		}
		// The victim's pods are gone or marked for deletion.
		onVictim := 0
		for _, p := range pods {
			if p.Spec.NodeName == victim.name {
				onVictim++
			}
		}
		return ready == 3 && evicted == onVictim, podSummary(pods)
	})

	restart()
	waitFor(t, "node "+victim.name+" Ready again", 3*time.Minute, func() (bool, string) {
		var n corev1.Node
		if err := c.getJSON(&n, "get", "node", victim.name); err != nil {
			return false, err.Error()
		}
		return nodeReady(&n), fmt.Sprintf("Ready=%s taints=%v", nodeReadyStatus(&n), n.Spec.Taints)
	})
	waitFor(t, "the evicted pods deleted by the restarted kubelet", 3*time.Minute, func() (bool, string) {
		pods, err := c.pods(ns, "app=survivor")
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods {
			for _, v := range victimPods {
				if p.Name == v {
					return false, podSummary(pods)
				}
			}
		}
		return true, ""
	})
	waitFor(t, "deployment survivor complete", 3*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "survivor") })
}

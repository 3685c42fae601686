//go:build e2e

package e2e

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// object is the identity of any object kubectl lists.
type object struct {
	Kind     string            `json:"kind"`
	Metadata metav1.ObjectMeta `json:"metadata"`
}

func (o object) key() string {
	return o.Kind + " " + o.Metadata.Namespace + "/" + o.Metadata.Name
}

// snapshotKinds are the objects whose identity must survive the outage.
const snapshotKinds = "namespaces,nodes,deployments,replicasets,services,configmaps,serviceaccounts,secrets"

func (c *cluster) objects(t *testing.T) map[string]string {
	t.Helper()
	var l struct {
		Items []object `json:"items"`
	}
	if err := c.getJSON(&l, "get", snapshotKinds, "-A"); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{}
	for _, o := range l.Items {
		if o.Metadata.DeletionTimestamp != nil {
			continue
		}
		uids[o.key()] = string(o.Metadata.UID)
	}
	return uids
}

// runningPods are the Running, Ready pods not being deleted, by UID.
func (c *cluster) runningPods() (map[string]corev1.Pod, error) {
	var l corev1.PodList
	if err := c.getJSON(&l, "get", "pods", "-A"); err != nil {
		return nil, err
	}
	pods := map[string]corev1.Pod{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && podReady(&p) {
			pods[string(p.UID)] = p
		}
	}
	return pods, nil
}

func restarts(p corev1.Pod) int32 {
	var n int32
	for _, s := range p.Status.ContainerStatuses {
		n += s.RestartCount
	}
	return n
}

// testControlPlaneKill kills the apiserver (with its embedded etcd), the
// scheduler and the controller-manager with SIGKILL while a client keeps
// creating ConfigMaps, starts them again, and expects: every acknowledged
// write and every object from before present with its UID; every pod that
// ran before still running on its node, not restarted; the guestbook's
// entries still readable; the nodes Ready; and the controllers and the
// scheduler working (a scale-up and a new Deployment roll out).
func testControlPlaneKill(t *testing.T, c *cluster, gb *guestbook) {
	ns := c.namespace(t, "e2e-cp")
	labels := map[string]string{"app": "steady"}
	steady := &appsv1.Deployment{
		TypeMeta:   typeMeta("Deployment", "apps/v1"),
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr(int64(2)),
					Containers:                    []corev1.Container{{Name: "main", Image: c.busybox(), Command: []string{"sleep", "100000"}}},
				},
			},
		},
	}
	c.apply(t, ns, steady)
	waitFor(t, "deployment steady rolled out", 5*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "steady") })
	if gb != nil {
		for _, d := range []string{"redis-master", "redis-replica", "frontend"} {
			waitFor(t, "guestbook deployment "+d+" complete", 5*time.Minute, func() (bool, string) {
				return c.deploymentComplete(guestbookNamespace, d)
			})
		}
	}
	beforeObjects := c.objects(t)
	beforePods, err := c.runningPods()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before: %d objects, %d running pods", len(beforeObjects), len(beforePods))

	// A client creating ConfigMaps one after the other; the acknowledged
	// ones must all be there after the crash.
	var mu sync.Mutex
	var acked []string
	attempts := 0
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("ack-%04d", i)
			_, err := c.kubectl("create", "configmap", "-n", ns, name, "--from-literal=n="+name)
			mu.Lock()
			attempts++
			if err == nil {
				acked = append(acked, name)
			}
			mu.Unlock()
		}
	}()
	stopWriter := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-writerDone
	}
	defer stopWriter()
	waitFor(t, "10 acknowledged ConfigMap creates", 2*time.Minute, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 10, fmt.Sprintf("%d of %d acknowledged", len(acked), attempts)
	})

	restarted := false
	restart := func() {
		if !restarted {
			restarted = true
			c.clusterScript(t, "start", "control-plane")
		}
	}
	t.Cleanup(restart)
	c.clusterScript(t, "kill", "-s", "KILL", "control-plane")
	// Writes during the outage fail; give the writer one failure to see it.
	waitFor(t, "the writer to see the apiserver gone", time.Minute, func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return attempts > len(acked), fmt.Sprintf("%d of %d acknowledged", len(acked), attempts)
	})
	stopWriter()
	if _, err := c.kubectl("get", "--raw", "/readyz"); err == nil {
		t.Fatal("the apiserver still answers after kill -9")
	}
	mu.Lock()
	t.Logf("killed the control plane with %d of %d ConfigMap creates acknowledged", len(acked), attempts)
	mu.Unlock()
	restart()

	// Nothing lost.
	waitFor(t, "every node Ready after the restart", 3*time.Minute, func() (bool, string) {
		var l corev1.NodeList
		if err := c.getJSON(&l, "get", "nodes"); err != nil {
			return false, err.Error()
		}
		var bad []string
		for _, n := range l.Items {
			if !nodeReady(&n) {
				bad = append(bad, n.Name+"="+string(nodeReadyStatus(&n)))
			}
		}
		return len(l.Items) == len(c.nodes) && len(bad) == 0, fmt.Sprintf("%d nodes, not Ready: %v", len(l.Items), bad)
	})
	var cms corev1.ConfigMapList
	if err := c.getJSON(&cms, "get", "configmaps", "-n", ns); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, cm := range cms.Items {
		have[cm.Name] = cm.Data["n"] == cm.Name
	}
	for _, name := range acked {
		if !have[name] {
			t.Errorf("acknowledged ConfigMap %s/%s lost", ns, name)
		}
	}
	after := c.objects(t)
	var lost []string
	for k, uid := range beforeObjects {
		switch got, ok := after[k]; {
		case !ok:
			lost = append(lost, k+" missing")
		case got != uid:
			lost = append(lost, fmt.Sprintf("%s has UID %s, was %s", k, got, uid))
		}
	}
	sort.Strings(lost)
	for _, l := range lost {
		t.Errorf("after the restart: %s", l)
	}
	t.Logf("%d acknowledged ConfigMaps and %d objects from before checked", len(acked), len(beforeObjects))

	waitFor(t, "every pod from before Running and Ready on its node, not restarted", 2*time.Minute, func() (bool, string) {
		now, err := c.runningPods()
		if err != nil {
			return false, err.Error()
		}
		var bad []string
		for uid, p := range beforePods {
			q, ok := now[uid]
			switch {
			case !ok:
				bad = append(bad, p.Namespace+"/"+p.Name+" not running")
			case q.Spec.NodeName != p.Spec.NodeName:
				bad = append(bad, fmt.Sprintf("%s/%s moved from %s to %s", p.Namespace, p.Name, p.Spec.NodeName, q.Spec.NodeName))
			case restarts(q) != restarts(p):
				bad = append(bad, fmt.Sprintf("%s/%s restarted (%d -> %d)", p.Namespace, p.Name, restarts(p), restarts(q)))
			}
		}
		sort.Strings(bad)
		return len(bad) == 0, strings.Join(bad, "; ")
	})
	if gb != nil && len(gb.entries) > 0 {
		for _, n := range c.nodes {
			u := fmt.Sprintf("http://%s:%d/get", n.ip, guestbookNodePort)
			waitFor(t, "the guestbook entries through "+u, 2*time.Minute, func() (bool, string) { return c.guestbookHas(u, gb.entries) })
		}
	}

	// The controllers and the scheduler work again.
	c.must(t, "scale", "-n", ns, "deployment/steady", "--replicas=5")
	waitFor(t, "deployment steady scaled to 5", 5*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "steady") })
	fresh := steady.DeepCopy()
	fresh.Name = "after-restart"
	fresh.Spec.Replicas = ptr(int32(2))
	fresh.Spec.Selector.MatchLabels = map[string]string{"app": "after-restart"}
	fresh.Spec.Template.Labels = map[string]string{"app": "after-restart"}
	c.apply(t, ns, fresh)
	waitFor(t, "a new deployment rolled out", 5*time.Minute, func() (bool, string) { return c.deploymentComplete(ns, "after-restart") })
}

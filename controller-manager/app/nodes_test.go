package app_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/app"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/nodelifecycle"
	"github.com/coxswain/coxswain/pkg/client"
)

// nodeGrace is the node monitor grace period of TestNodes.
const nodeGrace = 2 * time.Second

// TestNodes covers nodeipam, nodelifecycle and podgc: the controller manager
// runs with --cluster-cidr 10.244.0.0/16 and a 2 s grace period.
func TestNodes(t *testing.T) {
	e := startEnv(t, func(o *app.Options) {
		o.ClusterCIDR = "10.244.0.0/16"
		o.NodeCIDRMaskSize = 24
		o.NodeMonitorGracePeriod = nodeGrace
		o.Controllers = []string{"nodeipam", "nodelifecycle", "podgc"}
	})
	t.Run("NodeIPAM", e.testNodeIPAM)
	t.Run("NodeLifecycle", e.testNodeLifecycle)
	t.Run("PodGC", e.testPodGC)
}

func (e *env) createNode(t *testing.T, name string) {
	t.Helper()
	now := metav1.Now()
	_, err := client.For[*corev1.Node](e.Client).Create(context.Background(), "", &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{
			Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status",
			LastHeartbeatTime: now, LastTransitionTime: now,
		}}},
	})
	if err != nil {
		t.Fatalf("create node %s: %v", name, err)
	}
}

// waitPodCIDR waits for a node's pod CIDR and returns it.
func (e *env) waitPodCIDR(t *testing.T, name string) string {
	t.Helper()
	var cidr string
	eventually(t, "pod CIDR of "+name, func(ctx context.Context) (bool, error) {
		n, err := client.For[*corev1.Node](e.Client).Get(ctx, "", name)
		if err != nil {
			return false, err
		}
		cidr = n.Spec.PodCIDR
		return cidr != "" && len(n.Spec.PodCIDRs) == 1 && n.Spec.PodCIDRs[0] == cidr, nil
	})
	_, cluster, _ := net.ParseCIDR("10.244.0.0/16")
	ip, n, err := net.ParseCIDR(cidr)
	if ones, _ := n.Mask.Size(); err != nil || ones != 24 || !cluster.Contains(ip) {
		t.Errorf("node %s got pod CIDR %s, want a /24 of 10.244.0.0/16", name, cidr)
	}
	return cidr
}

func (e *env) testNodeIPAM(t *testing.T) {
	seen := map[string]string{}
	check := func(node, cidr string) {
		if other, ok := seen[cidr]; ok {
			t.Errorf("%s got %s, already %s's", node, cidr, other)
		}
		seen[cidr] = node
	}
	for i := 1; i <= 3; i++ {
		e.createNode(t, fmt.Sprintf("ipam-%d", i))
	}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("ipam-%d", i)
		check(name, e.waitPodCIDR(t, name))
	}
	// A restarted controller manager rebuilds the allocated set from the
	// nodes: the 4th node gets a fresh CIDR.
	e.restartControllerManager(t)
	e.createNode(t, "ipam-4")
	check("ipam-4", e.waitPodCIDR(t, "ipam-4"))
}

func (e *env) renewLease(ctx context.Context, node string) error {
	lc := client.For[*coordinationv1.Lease](e.Client)
	now := metav1.NewMicroTime(time.Now())
	l, err := lc.Get(ctx, corev1.NamespaceNodeLease, node)
	if apierrors.IsNotFound(err) {
		_, err = lc.Create(ctx, corev1.NamespaceNodeLease, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: new(node), LeaseDurationSeconds: new(int32(40)), RenewTime: &now},
		})
		return err
	}
	if err != nil {
		return err
	}
	l.Spec.RenewTime = &now
	_, err = lc.Update(ctx, corev1.NamespaceNodeLease, l)
	return err
}

func nodeReady(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func unreachableTaints(n *corev1.Node) int {
	c := 0
	for _, tn := range n.Spec.Taints {
		if tn.Key == corev1.TaintNodeUnreachable && (tn.Effect == corev1.TaintEffectNoSchedule || tn.Effect == corev1.TaintEffectNoExecute) {
			c++
		}
	}
	return c
}

// defaultTolerations are what the apiserver's DefaultTolerationSeconds
// admission gives a pod that tolerates neither taint.
var defaultTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: new(int64(300))},
}

// unreachableNoExecute returns the node's unreachable NoExecute taint.
func unreachableNoExecute(n *corev1.Node) *corev1.Taint {
	for i, tn := range n.Spec.Taints {
		if tn.Key == corev1.TaintNodeUnreachable && tn.Effect == corev1.TaintEffectNoExecute {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

func (e *env) testNodeLifecycle(t *testing.T) {
	ctx := context.Background()
	const node = "worker"
	nc := client.For[*corev1.Node](e.Client)
	pc := client.For[*corev1.Pod](e.Client)
	ns := e.namespace("lifecycle")
	e.createNode(t, node)
	if err := e.renewLease(ctx, node); err != nil {
		t.Fatal(err)
	}
	noExec := func(secs *int64) []corev1.Toleration {
		return []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: secs}}
	}
	for name, tols := range map[string][]corev1.Toleration{
		"default":  nil,
		"patient":  noExec(new(int64(2))),
		"stubborn": noExec(nil),
	} {
		spec := podTemplate(nil, "nginx").Spec
		spec.NodeName, spec.Tolerations = node, tols
		p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		if name == "default" {
			// Created through the apiserver, a pod without tolerations
			// gets upstream's 300 s ones (DefaultTolerationSeconds).
			if diff := cmp.Diff(defaultTolerations, p.Spec.Tolerations); diff != "" {
				t.Errorf("tolerations of a pod created without any (-want +got):\n%s", diff)
			}
		}
		if err := e.markReady(ctx, p); err != nil {
			t.Fatal(err)
		}
	}

	// A kubelet renewing its Lease keeps the node Ready past the grace
	// period, although its status is not updated.
	for range 3 {
		time.Sleep(nodeGrace / 2) // the kubelet's heartbeat interval, not synchronisation
		if err := e.renewLease(ctx, node); err != nil {
			t.Fatal(err)
		}
	}
	n, err := nc.Get(ctx, "", node)
	if err != nil {
		t.Fatal(err)
	}
	if c := nodeReady(n); c == nil || c.Status != corev1.ConditionTrue || unreachableTaints(n) != 0 {
		t.Fatalf("node with a renewed Lease: Ready %+v, taints %v; want True, none", c, n.Spec.Taints)
	}

	// Silent for the grace period: Unknown, tainted, pods evicted as their
	// tolerations run out.
	var tainted *corev1.Taint
	eventually(t, "node Unknown and tainted", func(ctx context.Context) (bool, error) {
		n, err := nc.Get(ctx, "", node)
		if err != nil {
			return false, err
		}
		c := nodeReady(n)
		tainted = unreachableNoExecute(n)
		return c != nil && c.Status == corev1.ConditionUnknown && c.Reason == nodelifecycle.ReasonUnknown && c.Message == nodelifecycle.MessageUnknown &&
			unreachableTaints(n) == 2, fmt.Errorf("Ready %+v, taints %v", c, n.Spec.Taints)
	})
	if tainted.TimeAdded == nil {
		t.Fatalf("NoExecute taint %+v has no timeAdded", tainted)
	}
	var patient *corev1.Pod
	eventually(t, "patient pod evicted", func(ctx context.Context) (bool, error) {
		p, err := pc.Get(ctx, ns, "patient")
		if apierrors.IsNotFound(err) {
			t.Fatal("the patient pod was deleted outright; want a graceful deletion whose time can be checked")
		}
		patient = p
		return err == nil && p.DeletionTimestamp != nil, err
	})
	// It went once its 2 s toleration ran out, not before: a pod bound to a
	// node is deleted gracefully, deletionTimestamp = delete time + grace
	// (both in whole seconds, as is the taint's timeAdded).
	deletedAt := patient.DeletionTimestamp.Add(-time.Duration(*patient.DeletionGracePeriodSeconds) * time.Second)
	if earliest := tainted.TimeAdded.Add(2 * time.Second); deletedAt.Before(earliest) {
		t.Errorf("patient pod deleted at %v, before its toleration ran out at %v (taint added %v)", deletedAt, earliest, tainted.TimeAdded)
	}
	// The pods tolerating the taint for 300 s (by default) or forever stay.
	for _, name := range []string{"default", "stubborn"} {
		if p, err := pc.Get(ctx, ns, name); err != nil || p.DeletionTimestamp != nil {
			t.Errorf("pod %s was evicted although it tolerates the taint for 300 s or more (%v)", name, err)
		}
	}
	eventually(t, "pod on the unreachable node not ready", func(ctx context.Context) (bool, error) {
		p, err := pc.Get(ctx, ns, "stubborn")
		return err == nil && !isReady(p), err
	})

	// The kubelet reports again: the taints go.
	eventually(t, "Ready posted", func(ctx context.Context) (bool, error) {
		n, err := nc.Get(ctx, "", node)
		if err != nil {
			return false, err
		}
		now := metav1.Now()
		c := nodeReady(n)
		c.Status, c.Reason, c.Message, c.LastHeartbeatTime, c.LastTransitionTime = corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status", now, now
		_, err = nc.UpdateStatus(ctx, "", n)
		return err == nil, err
	})
	if err := e.renewLease(ctx, node); err != nil {
		t.Fatal(err)
	}
	eventually(t, "taints removed", func(ctx context.Context) (bool, error) {
		n, err := nc.Get(ctx, "", node)
		if err != nil {
			return false, err
		}
		return unreachableTaints(n) == 0 && nodeReady(n).Status == corev1.ConditionTrue, fmt.Errorf("taints %v", n.Spec.Taints)
	})
}

// testPodGC: deleting a Node removes the pods bound to it (force-deleted:
// no kubelet will finish them), including one already terminating; pods
// of other nodes stay.
func (e *env) testPodGC(t *testing.T) {
	ctx := context.Background()
	nc := client.For[*corev1.Node](e.Client)
	pc := client.For[*corev1.Pod](e.Client)
	ns := e.namespace("podgc")
	e.createNode(t, "doomed")
	e.createNode(t, "survivor")
	create := func(name, node string) *corev1.Pod {
		t.Helper()
		spec := podTemplate(nil, "nginx").Spec
		spec.NodeName = node
		p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.markReady(ctx, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	doomed := []string{"doomed-0", "doomed-1", "doomed-terminating"}
	for _, name := range doomed {
		create(name, "doomed")
	}
	create("kept", "survivor")
	// A graceful delete leaves a bound pod terminating, waiting on a
	// kubelet that will never come.
	if _, err := pc.Delete(ctx, ns, "doomed-terminating", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if p, err := pc.Get(ctx, ns, "doomed-terminating"); err != nil || p.DeletionTimestamp == nil {
		t.Fatalf("gracefully deleted pod: %v, %v; want it terminating", p, err)
	}

	if _, err := nc.Delete(ctx, "", "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pods of the deleted node gone", func(ctx context.Context) (bool, error) {
		for _, name := range doomed {
			p, err := pc.Get(ctx, ns, name)
			if err == nil {
				return false, fmt.Errorf("pod %s still there (phase %s, deletionTimestamp %v)", name, p.Status.Phase, p.DeletionTimestamp)
			}
			if !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return true, nil
	})
	if p, err := pc.Get(ctx, ns, "kept"); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the pod of a node that still exists was deleted (%v)", err)
	}
}

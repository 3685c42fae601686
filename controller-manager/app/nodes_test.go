package app_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

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

// TestNodes covers nodeipam and nodelifecycle: the controller manager
// runs with --cluster-cidr 10.244.0.0/16 and a 2 s grace period.
func TestNodes(t *testing.T) {
	e := startEnv(t, func(o *app.Options) {
		o.ClusterCIDR = "10.244.0.0/16"
		o.NodeCIDRMaskSize = 24
		o.NodeMonitorGracePeriod = nodeGrace
		o.Controllers = []string{"nodeipam", "nodelifecycle"}
	})
	t.Run("NodeIPAM", e.testNodeIPAM)
	t.Run("NodeLifecycle", e.testNodeLifecycle)
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
		"intolerant": nil,
		"patient":    noExec(new(int64(2))),
		"stubborn":   noExec(nil),
	} {
		spec := podTemplate(nil, "nginx").Spec
		spec.NodeName, spec.Tolerations = node, tols
		p, err := pc.Create(ctx, ns, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})
		if err != nil {
			t.Fatal(err)
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
	eventually(t, "node Unknown and tainted", func(ctx context.Context) (bool, error) {
		n, err := nc.Get(ctx, "", node)
		if err != nil {
			return false, err
		}
		c := nodeReady(n)
		return c != nil && c.Status == corev1.ConditionUnknown && c.Reason == nodelifecycle.ReasonUnknown && c.Message == nodelifecycle.MessageUnknown &&
			unreachableTaints(n) == 2, fmt.Errorf("Ready %+v, taints %v", c, n.Spec.Taints)
	})
	evicted := func(name string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			p, err := pc.Get(ctx, ns, name)
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return err == nil && p.DeletionTimestamp != nil, err
		}
	}
	eventually(t, "intolerant pod evicted", evicted("intolerant"))
	if p, err := pc.Get(ctx, ns, "patient"); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the pod tolerating 2 s was evicted at once (%v)", err)
	}
	eventually(t, "patient pod evicted", evicted("patient"))
	if p, err := pc.Get(ctx, ns, "stubborn"); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the pod tolerating the taint forever was evicted (%v)", err)
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

package app_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// TestLeaderFailover runs two kube-controller-manager binaries with
// --leader-elect: only the Lease holder runs controllers (the standby
// never starts them), and after SIGKILL of the leader the standby takes
// the Lease within 15 s and reconciles a ReplicaSet scale-up.
func TestLeaderFailover(t *testing.T) {
	h := harness.Start(t)
	bin := buildControllerManager(t)
	ctx := context.Background()
	ns := "leader"
	if _, err := client.For[*corev1.Namespace](h.Client).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	// The lease flags of deploy/systemd/kube-controller-manager.env: the
	// 15 s failover is measured with what a cluster runs.
	args := []string{"--leader-elect", "--leader-elect-lease-duration=10s", "--leader-elect-renew-deadline=8s", "--leader-elect-retry-period=2s"}
	leases := client.For[*coordinationv1.Lease](h.Client)
	holder := func(ctx context.Context) (string, error) {
		l, err := leases.Get(ctx, metav1.NamespaceSystem, "kube-controller-manager")
		if err != nil {
			return "", err
		}
		if l.Spec.HolderIdentity == nil {
			return "", nil
		}
		return *l.Spec.HolderIdentity, nil
	}
	// identity reads a candidate's identity from its log.
	identity := func(p *process) string {
		t.Helper()
		var id string
		eventually(t, p.name+" identity", func(context.Context) (bool, error) {
			for _, e := range p.logged("attempting to acquire leader lease") {
				id, _ = e["identity"].(string)
			}
			return id != "", nil
		})
		return id
	}

	leader := startProcess(t, "kube-controller-manager#1", bin, h.Kubeconfig, args...)
	leaderID := identity(leader)
	eventually(t, "the first instance to hold the lease", func(ctx context.Context) (bool, error) {
		got, err := holder(ctx)
		return got == leaderID, fmt.Errorf("holder %q (%v)", got, err)
	})
	standby := startProcess(t, "kube-controller-manager#2", bin, h.Kubeconfig, args...)
	standbyID := identity(standby)

	lbls := map[string]string{"app": "leader"}
	sel := labels.SelectorFromSet(lbls)
	rsc := client.For[*appsv1.ReplicaSet](h.Client)
	if _, err := rsc.Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(2)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	waitPods := func(want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			pods, _, err := client.For[*corev1.Pod](h.Client).List(ctx, ns, metav1.ListOptions{LabelSelector: sel.String()})
			if err == nil && len(pods) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d pods after %v (%v), want %d", len(pods), within, err, want)
			}
			time.Sleep(50 * time.Millisecond) // polling; the deadline decides
		}
	}
	waitPods(2, waitTimeout)

	// Only the leader runs controllers.
	if got, err := holder(ctx); err != nil || got != leaderID {
		t.Fatalf("lease holder %q (%v) while the first instance runs, want %q", got, err, leaderID)
	}
	if n := len(leader.logged("creating pods")); n == 0 {
		t.Errorf("the leader logged no pod creation")
	}
	for _, msg := range []string{"starting controllers", "creating pods"} {
		if n := len(standby.logged(msg)); n != 0 {
			t.Errorf("the standby logged %q %d times while not leading", msg, n)
		}
	}

	leader.kill()
	killed := time.Now()
	eventually(t, "the standby to take the lease", func(ctx context.Context) (bool, error) {
		got, err := holder(ctx)
		return got == standbyID, fmt.Errorf("holder %q (%v)", got, err)
	})
	if took := time.Since(killed); took > 15*time.Second {
		t.Fatalf("the standby took the lease %v after the kill, want within 15s", took)
	}
	// The new leader reconciles: a scale-up and a deleted pod.
	update(t, rsc, ns, "web", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(4)) })
	waitPods(4, 15*time.Second-time.Since(killed))
	t.Logf("the standby took over and scaled the ReplicaSet %v after the kill", time.Since(killed).Round(100*time.Millisecond))
	if len(standby.logged("starting controllers")) != 1 {
		t.Errorf("the new leader logged \"starting controllers\" %d times, want once", len(standby.logged("starting controllers")))
	}
	if standby.exited() {
		t.Fatalf("the new leader exited: %v", standby.err)
	}
}

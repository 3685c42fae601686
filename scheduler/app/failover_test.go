package app_test

import (
	"context"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
)

// Two kube-scheduler processes with --leader-elect: one holds the Lease
// and schedules; after kill -9 of that one the other takes the Lease and
// binds a new pod within 15 s of the kill. The lease flags are the ones
// deploy/systemd uses (10 s lease, 2 s retry): a crashed leader's lease
// runs out at most lease + 2 retry periods after the kill.
func TestLeaderFailoverAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two kube-scheduler binaries")
	}
	env := harness.Start(t)
	c := env.Client
	ctx := context.Background()
	createNode(t, c, fixture.Node("n1", "8", "16Gi").Obj())
	bin := harness.BuildBinary(t, "github.com/coxswain/coxswain/scheduler/cmd/kube-scheduler")
	args := []string{"--kubeconfig", env.Kubeconfig, "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--log-level", "warn", "--leader-elect",
		"--leader-elect-lease-duration", "10s", "--leader-elect-renew-deadline", "8s", "--leader-elect-retry-period", "2s"}
	leases := client.For[*coordinationv1.Lease](c)
	holder := func() string {
		l, err := leases.Get(ctx, config.DefaultLeaseNamespace, config.DefaultLeaseName)
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}

	first := harness.StartProcess(t, bin, args...)
	var leader string
	waitFor(t, "the first scheduler to take the lease", func() (bool, error) { leader = holder(); return leader != "", nil })
	harness.StartProcess(t, bin, args...)
	createPod(t, c, fixture.Pod("before").Container("100m", "").Obj())
	waitBound(t, c, "before")
	if got := holder(); got != leader {
		t.Fatalf("lease moved from %q to %q while the leader ran", leader, got)
	}

	first.Kill()
	killed := time.Now()
	createPod(t, c, fixture.Pod("after").Container("100m", "").Obj())
	deadline := killed.Add(15 * time.Second)
	for {
		p, err := client.For[*corev1.Pod](c).Get(ctx, "default", "after")
		if err == nil && p.Spec.NodeName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no scheduler bound a pod within 15 s of killing the leader (lease holder %q, was %q)", holder(), leader)
		}
		time.Sleep(100 * time.Millisecond) // polling the pod; the deadline decides
	}
	took := time.Since(killed)
	if got := holder(); got == leader || got == "" {
		t.Fatalf("lease holder %q after failover, want the standby (old leader %q)", got, leader)
	}
	t.Logf("standby took over and bound a pod %v after kill -9 of the leader", took.Round(100*time.Millisecond))
}

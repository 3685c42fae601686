package app_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// TestKillMidScaleUp SIGKILLs the kube-controller-manager binary while it
// creates the pods of a ReplicaSet scaled from 0 to 500, starts it again,
// and checks that the pods converge to exactly 500 and were never more:
// the new process counts what the old one created instead of redoing it.
func TestKillMidScaleUp(t *testing.T) {
	const replicas, killAt = 500, 100
	h := harness.Start(t)
	bin := buildControllerManager(t)
	ctx := context.Background()
	ns := "kill-scale"
	if _, err := client.For[*corev1.Namespace](h.Client).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		count    int
		maxCount int
		reached  = make(chan struct{})
		once     sync.Once
		atKill   int
	)
	watchState(t, client.For[*corev1.Pod](h.Client), ns, func(pods map[string]*corev1.Pod) {
		mu.Lock()
		count = len(pods)
		maxCount = max(maxCount, count)
		mu.Unlock()
		if count >= killAt {
			once.Do(func() { close(reached) })
		}
	})
	current := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		return count, maxCount
	}

	rsc := client.For[*appsv1.ReplicaSet](h.Client)
	lbls := map[string]string{"app": "burst"}
	if _, err := rsc.Create(ctx, ns, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "burst"},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: new(int32(0)), Selector: &metav1.LabelSelector{MatchLabels: lbls}, Template: podTemplate(lbls, "nginx"),
		},
	}); err != nil {
		t.Fatal(err)
	}
	cm := startProcess(t, "kube-controller-manager#1", bin, h.Kubeconfig, "--leader-elect=false")
	// Kill from its own goroutine as soon as the pods pass killAt, while
	// the controller is still in the middle of its creation batches.
	killed := make(chan error, 1)
	go func() {
		select {
		case <-reached:
		case <-cm.done:
			killed <- fmt.Errorf("kube-controller-manager exited before the kill: %w", cm.err)
			return
		}
		_ = cm.cmd.Process.Kill() // SIGKILL, this pid only
		<-cm.done
		atKill, _ = current()
		killed <- nil
	}()

	// The controller has synced the ReplicaSet at 0 before it is scaled.
	eventually(t, "ReplicaSet observed at 0", func(ctx context.Context) (bool, error) {
		rs, err := rsc.Get(ctx, ns, "burst")
		return err == nil && rs.Status.ObservedGeneration == rs.Generation, err
	})
	update(t, rsc, ns, "burst", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = new(int32(replicas)) })

	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("the pods never reached %d", killAt)
	}
	if !cm.exited() {
		t.Fatal("kube-controller-manager still running after SIGKILL")
	}
	if atKill >= replicas {
		t.Fatalf("all %d pods existed before the kill; the test did not interrupt the scale-up", atKill)
	}
	t.Logf("killed pid %d with %d of %d pods created", cm.cmd.Process.Pid, atKill, replicas)

	startProcess(t, "kube-controller-manager#2", bin, h.Kubeconfig, "--leader-elect=false")
	eventually(t, fmt.Sprintf("%d pods and status", replicas), func(ctx context.Context) (bool, error) {
		n, _ := current()
		rs, err := rsc.Get(ctx, ns, "burst")
		if err != nil {
			return false, err
		}
		s := rs.Status
		return n == replicas && s.Replicas == replicas && s.ObservedGeneration == rs.Generation,
			fmt.Errorf("%d pods, status %d replicas, observed generation %d of %d", n, s.Replicas, s.ObservedGeneration, rs.Generation)
	})
	// The watch has seen every pod ever created; the apiserver agrees.
	pods, _, err := client.For[*corev1.Pod](h.Client).List(ctx, ns, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, most := current(); most != replicas || len(pods) != replicas {
		t.Fatalf("at most %d pods seen, %d listed; want exactly %d", most, len(pods), replicas)
	}
}

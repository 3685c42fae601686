package app_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/scheduler/app"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/fixture"
)

const waitTimeout = 20 * time.Second

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", waitTimeout, what, lastErr)
		}
		<-tick.C
	}
}

func startScheduler(t *testing.T, env *harness.Env, mutate func(*app.Options)) *app.Server {
	t.Helper()
	o := app.NewOptions()
	o.Kubeconfig = env.Kubeconfig
	o.Serving.BindAddress = "127.0.0.1"
	o.Serving.Port = 0
	o.ShutdownGracePeriod = time.Second
	if mutate != nil {
		mutate(o)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := app.Start(ctx, o, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		cancel()
		t.Fatalf("start scheduler: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Wait(); err != nil {
			t.Errorf("scheduler stopped: %v", err)
		}
	})
	return s
}

func createNode(t *testing.T, c *client.Client, n *corev1.Node) {
	t.Helper()
	n = n.DeepCopy()
	n.UID = ""
	if _, err := client.For[*corev1.Node](c).Create(context.Background(), "", n); err != nil {
		t.Fatalf("create node %s: %v", n.Name, err)
	}
}

func createPod(t *testing.T, c *client.Client, p *corev1.Pod) {
	t.Helper()
	p = p.DeepCopy()
	p.UID = ""
	if len(p.Spec.Containers) == 0 {
		t.Fatalf("pod %s has no container", p.Name)
	}
	if _, err := client.For[*corev1.Pod](c).Create(context.Background(), p.Namespace, p); err != nil {
		t.Fatalf("create pod %s: %v", p.Name, err)
	}
}

// waitBound waits until the pod is bound and returns its node.
func waitBound(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	var node string
	waitFor(t, "pod "+name+" to be bound", func() (bool, error) {
		p, err := client.For[*corev1.Pod](c).Get(context.Background(), "default", name)
		if err != nil {
			return false, err
		}
		node = p.Spec.NodeName
		return node != "", nil
	})
	return node
}

// waitUnschedulable waits for the PodScheduled=False condition with
// reason Unschedulable and returns its message.
func waitUnschedulable(t *testing.T, c *client.Client, name string) string {
	t.Helper()
	var msg string
	waitFor(t, "pod "+name+" to be marked unschedulable", func() (bool, error) {
		p, err := client.For[*corev1.Pod](c).Get(context.Background(), "default", name)
		if err != nil {
			return false, err
		}
		if p.Spec.NodeName != "" {
			return false, fmt.Errorf("pod %s was bound to %s", name, p.Spec.NodeName)
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
				msg = cond.Message
				return true, nil
			}
		}
		return false, nil
	})
	return msg
}

func TestScheduling(t *testing.T) {
	env := harness.Start(t)
	c := env.Client
	createNode(t, c, fixture.Node("n1", "2", "4Gi").Obj())
	createNode(t, c, fixture.Node("n2", "4", "8Gi").Obj())
	createNode(t, c, fixture.Node("n3", "4", "8Gi").Label("gpu", "true").Taint("dedicated", "gpu", corev1.TaintEffectNoSchedule).Obj())
	s := startScheduler(t, env, nil)

	waitFor(t, "/readyz", func() (bool, error) {
		resp, err := healthGet(s.Address, "/readyz")
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})

	t.Run("binds to a fitting untainted node", func(t *testing.T) {
		createPod(t, c, fixture.Pod("small").Container("1", "1Gi").Obj())
		if node := waitBound(t, c, "small"); node != "n1" && node != "n2" {
			t.Errorf("small bound to %s, want n1 or n2", node)
		}
	})
	t.Run("nodeSelector and toleration", func(t *testing.T) {
		createPod(t, c, fixture.Pod("gpu").Container("1", "1Gi").NodeSelector(map[string]string{"gpu": "true"}).
			Toleration("dedicated", corev1.TolerationOpEqual, "gpu", corev1.TaintEffectNoSchedule).Obj())
		if node := waitBound(t, c, "gpu"); node != "n3" {
			t.Errorf("gpu bound to %s, want n3", node)
		}
	})
	t.Run("nodeSelector without toleration", func(t *testing.T) {
		createPod(t, c, fixture.Pod("gpu-untolerated").Container("100m", "").NodeSelector(map[string]string{"gpu": "true"}).Obj())
		msg := waitUnschedulable(t, c, "gpu-untolerated")
		want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector."
		if msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
		if _, err := client.For[*corev1.Pod](c).Delete(context.Background(), "default", "gpu-untolerated", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("too big, then a big node is added", func(t *testing.T) {
		createPod(t, c, fixture.Pod("big").Container("16", "1Gi").Obj())
		msg := waitUnschedulable(t, c, "big")
		want := "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 Insufficient cpu."
		if msg != want {
			t.Errorf("message %q, want %q", msg, want)
		}
		waitFor(t, "a FailedScheduling event", func() (bool, error) {
			evs, _, err := client.For[*corev1.Event](c).List(context.Background(), "default", metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, ev := range evs {
				if ev.InvolvedObject.Name == "big" && ev.Reason == "FailedScheduling" && ev.Type == corev1.EventTypeWarning && ev.Message == want {
					return true, nil
				}
			}
			return false, nil
		})
		createNode(t, c, fixture.Node("n4", "32", "64Gi").Obj())
		if node := waitBound(t, c, "big"); node != "n4" {
			t.Errorf("big bound to %s, want n4", node)
		}
	})
	t.Run("metrics", func(t *testing.T) {
		resp, err := healthGet(s.Address, "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), `scheduler_schedule_attempts_total{profile="default-scheduler",result="scheduled"}`) {
			t.Errorf("/metrics lacks scheduler_schedule_attempts_total:\n%.2000s", body)
		}
	})
}

// countPerNode waits for every pod to be bound and counts them per node.
func countPerNode(t *testing.T, c *client.Client, n int) map[string]int {
	t.Helper()
	var counts map[string]int
	waitFor(t, fmt.Sprintf("%d pods to be bound", n), func() (bool, error) {
		pods, _, err := client.For[*corev1.Pod](c).List(context.Background(), "default", metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		counts = map[string]int{}
		bound := 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				counts[p.Spec.NodeName]++
				bound++
			}
		}
		return bound == n, fmt.Errorf("%d of %d bound", bound, n)
	})
	return counts
}

func TestSpreadAndBinPack(t *testing.T) {
	env := harness.Start(t)
	c := env.Client
	for _, n := range []string{"n1", "n2", "n3"} {
		createNode(t, c, fixture.Node(n, "8", "16Gi").Obj())
	}
	t.Run("LeastAllocated spreads", func(t *testing.T) {
		startScheduler(t, env, nil)
		for i := range 50 {
			createPod(t, c, fixture.Pod(fmt.Sprintf("spread-%d", i)).Container("100m", "128Mi").Obj())
		}
		counts := countPerNode(t, c, 50)
		lo, hi := 50, 0
		for _, n := range []string{"n1", "n2", "n3"} {
			lo, hi = min(lo, counts[n]), max(hi, counts[n])
		}
		if hi-lo > 2 {
			t.Errorf("pods per node %v: want an even spread (at most 2 apart)", counts)
		}
	})
	t.Run("MostAllocated packs", func(t *testing.T) {
		cfg := config.Default()
		cfg.Profiles[0].SchedulerName = "bin-packer"
		// Balanced allocation would trade off against packing here.
		cfg.Profiles[0].Plugins = &config.Plugins{Score: config.PluginSet{Disabled: []config.Plugin{{Name: "NodeResourcesBalancedAllocation"}}}}
		cfg.Profiles[0].PluginConfig = []config.PluginConfig{{Name: "NodeResourcesFit", Args: []byte(`{"scoringStrategy":{"type":"MostAllocated"}}`)}}
		startScheduler(t, env, func(o *app.Options) { o.Config = cfg })
		before := countPerNode(t, c, 50)
		most := 0
		for _, k := range before {
			most = max(most, k)
		}
		for i := range 5 {
			p := fixture.Pod(fmt.Sprintf("pack-%d", i)).Container("1", "2Gi").Obj()
			p.Spec.SchedulerName = "bin-packer"
			createPod(t, c, p)
		}
		after := countPerNode(t, c, 55)
		packed := false
		for n := range after {
			if after[n]-before[n] == 5 && before[n] == most {
				packed = true
			}
		}
		if !packed {
			t.Errorf("pods per node before %v, after %v: want all 5 on one of the fullest nodes", before, after)
		}
	})
}

func TestLeaderElection(t *testing.T) {
	env := harness.Start(t)
	c := env.Client
	createNode(t, c, fixture.Node("n1", "8", "16Gi").Obj())
	elect := func(o *app.Options) {
		o.LeaderElect = true
		o.LeaderElectLeaseDuration = 2 * time.Second
		o.LeaderElectRenewDeadline = 1500 * time.Millisecond
		o.LeaderElectRetryPeriod = 250 * time.Millisecond
	}
	a := startScheduler(t, env, elect)
	b := startScheduler(t, env, elect)
	var leader, standby *app.Server
	waitFor(t, "a leader", func() (bool, error) {
		switch {
		case a.IsLeader() && !b.IsLeader():
			leader, standby = a, b
		case b.IsLeader() && !a.IsLeader():
			leader, standby = b, a
		}
		return leader != nil, nil
	})
	createPod(t, c, fixture.Pod("first").Container("100m", "").Obj())
	waitBound(t, c, "first")
	if standby.IsLeader() {
		t.Fatal("both schedulers lead")
	}
	if err := leader.Stop(); err != nil {
		t.Fatalf("stop leader: %v", err)
	}
	waitFor(t, "the standby to take over", func() (bool, error) { return standby.IsLeader(), nil })
	createPod(t, c, fixture.Pod("second").Container("100m", "").Obj())
	waitBound(t, c, "second")
}

// healthGet fetches path from the scheduler's HTTPS health port, which
// serves a self-signed certificate in these tests.
func healthGet(addr, path string) (*http.Response, error) {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} //nolint:gosec // self-signed test certificate
	defer tr.CloseIdleConnections()
	return (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://" + addr + path)
}

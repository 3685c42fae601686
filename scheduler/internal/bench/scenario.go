package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

const (
	namespace  = metav1.NamespaceDefault
	podPrefix  = "pod-"
	zones      = 10
	appGroups  = 100
	numClients = 4
	// stallTimeout ends the wait when no binding arrived for this long.
	stallTimeout = 30 * time.Second
)

// Result is one scenario in one mode.
type Result struct {
	Bound        int
	Elapsed      time.Duration // first create to last binding seen
	P50, P99     time.Duration // create sent to binding seen, per pod
	CreateErrors int
	FirstErr     string
	// CPU of the scheduler and the apiserver over the measured span, and
	// the scheduler's peak RSS.
	SchedulerCPU time.Duration
	SchedulerRSS int64
	APIServerCPU time.Duration
}

// Rate is bound pods per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Bound) / r.Elapsed.Seconds()
}

func runScenario(ctx context.Context, cfg *Config, bins binaries, tmp string, sc Scenario, m mode, logf func(string, ...any)) (res Result, err error) {
	dir, err := os.MkdirTemp(tmp, sc.Name+"-")
	if err != nil {
		return res, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	api, err := benchkit.StartAPIServer(ctx, bins.apiserver, dir, numClients)
	if err != nil {
		return res, err
	}
	defer api.Close(logf)
	kubeconfigPath, clients := api.Kubeconfig, api.Clients

	start := time.Now()
	if err := createNodes(ctx, clients, sc, cfg.Concurrency); err != nil {
		return res, err
	}
	logf("  %d nodes created in %s", sc.Nodes, benchkit.FormatDuration(time.Since(start)))

	var sched *benchkit.Process
	var profilePort int
	if m == modeScheduler {
		args := []string{"--kubeconfig", kubeconfigPath, "--bind-address", "127.0.0.1", "--secure-port", "0", "--log-level", "warn"}
		if cfg.SchedulerProfile != "" {
			if profilePort, err = benchkit.FreePort(); err != nil {
				return res, err
			}
			args = append(args, "--profiling", "--secure-port", strconv.Itoa(profilePort))
		}
		sched, err = benchkit.StartProcess("kube-scheduler", bins.scheduler, filepath.Join(dir, "kube-scheduler.log"), args...)
		if err != nil {
			return res, err
		}
		defer sched.Stop(10*time.Second, logf)
		// A bound pod proves the scheduler's informers have synced.
		if err := warmUp(ctx, clients[0], sched); err != nil {
			return res, err
		}
	}

	pods := client.For[*corev1.Pod](clients[0])
	_, lm, err := pods.List(ctx, namespace, metav1.ListOptions{Limit: 1})
	if err != nil {
		return res, fmt.Errorf("list pods: %w", err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	w, err := pods.Watch(wctx, namespace, metav1.ListOptions{ResourceVersion: lm.ResourceVersion})
	if err != nil {
		return res, fmt.Errorf("watch pods: %w", err)
	}
	bound := make([]time.Time, sc.Pods)
	var boundCount atomic.Int64
	allBound := make(chan struct{})
	var watchWG sync.WaitGroup
	watchWG.Go(func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok || p.Spec.NodeName == "" || !strings.HasPrefix(p.Name, podPrefix) {
				continue
			}
			i, err := strconv.Atoi(strings.TrimPrefix(p.Name, podPrefix))
			if err != nil || i < 0 || i >= len(bound) || !bound[i].IsZero() {
				continue
			}
			bound[i] = time.Now()
			if boundCount.Add(1) == int64(len(bound)) {
				close(allBound)
			}
		}
	})

	cpu := func(p *benchkit.Process) time.Duration {
		if p == nil {
			return 0
		}
		d, _ := benchkit.ProcessCPU(p.PID())
		return d
	}
	apiCPU0, schedCPU0 := cpu(api.Process), cpu(sched)
	var profileWG sync.WaitGroup
	defer profileWG.Wait()
	if profilePort != 0 {
		path := profilePath(cfg.SchedulerProfile, sc.Name)
		url := fmt.Sprintf("https://127.0.0.1:%d/debug/pprof/profile?seconds=10", profilePort)
		profileWG.Go(func() {
			//nolint:gosec // the scheduler's self-signed loopback certificate
			if err := benchkit.FetchProfile(ctx, url, &tls.Config{InsecureSkipVerify: true}, path); err != nil {
				logf("  scheduler CPU profile: %v", err)
				return
			}
			logf("  scheduler CPU profile written to %s", path)
		})
	}
	if cfg.APIServerProfile != "" {
		kc, err := kubeconfig.Load(kubeconfigPath)
		if err != nil {
			return res, err
		}
		tc, err := kc.TLSConfig()
		if err != nil {
			return res, err
		}
		path := profilePath(cfg.APIServerProfile, sc.Name+"-"+m.short())
		url := strings.TrimSuffix(kc.Server, "/") + "/debug/pprof/profile?seconds=10"
		profileWG.Go(func() {
			if err := benchkit.FetchProfile(ctx, url, tc, path); err != nil {
				logf("  apiserver CPU profile: %v", err)
				return
			}
			logf("  apiserver CPU profile written to %s", path)
		})
	}
	first := time.Now()
	starts, createErrs, firstErr := createPods(ctx, clients, sc, m, cfg.Concurrency)
	res.CreateErrors, res.FirstErr = createErrs, firstErr
	logf("  %d pod creates sent in %s (%d errors)", sc.Pods, benchkit.FormatDuration(time.Since(first)), createErrs)

	waitErr := waitBound(ctx, allBound, &boundCount, cfg.Timeout, api.Process, sched)
	res.APIServerCPU, res.SchedulerCPU = cpu(api.Process)-apiCPU0, cpu(sched)-schedCPU0
	if sched != nil {
		_, res.SchedulerRSS, _ = benchkit.ProcessRSS(sched.PID())
	}
	stopWatch()
	watchWG.Wait()

	var last time.Time
	lat := make([]time.Duration, 0, len(bound))
	for i, b := range bound {
		if b.IsZero() || starts[i].IsZero() {
			continue
		}
		lat = append(lat, b.Sub(starts[i]))
		if b.After(last) {
			last = b
		}
	}
	slices.Sort(lat)
	res.Bound = len(lat)
	if res.Bound > 0 {
		res.Elapsed = last.Sub(first)
	}
	res.P50, res.P99 = benchkit.Percentile(lat, 50), benchkit.Percentile(lat, 99)
	if waitErr != nil {
		return res, waitErr
	}
	if res.Bound < sc.Pods {
		return res, fmt.Errorf("only %d of %d pods bound (create errors: %d, first: %s)", res.Bound, sc.Pods, createErrs, firstErr)
	}
	return res, nil
}

// Node is the benchmark's i-th node: 4 CPU, 16 GiB, 110 pods, ten zones,
// Ready. The scheduler's cycle benchmark uses it too.
func Node(i int) *corev1.Node {
	name := fmt.Sprintf("node-%d", i)
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("4"), corev1.ResourceMemory: resource.MustParse("16Gi"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("100Gi"),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			corev1.LabelHostname: name, corev1.LabelTopologyZone: fmt.Sprintf("zone-%d", i%zones),
			corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64",
		}},
		Status: corev1.NodeStatus{
			Capacity: res, Allocatable: res,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}},
		},
	}
}

// Pod is the benchmark's i-th pod (100m CPU, 128 MiB requests), with
// required anti-affinity and topology spread on every other one when
// affinity is set. The scheduler's cycle benchmark uses it too.
func Pod(i int, affinity bool) *corev1.Pod {
	app := fmt.Sprintf("app-%d", i%appGroups)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s%d", podPrefix, i), Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "127.0.0.1:5000/coxswain/pause:latest",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi"),
			}},
		}}},
	}
	if affinity && i%2 == 0 {
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{LabelSelector: sel, TopologyKey: corev1.LabelHostname}},
		}}
		p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule, LabelSelector: sel,
		}}
	}
	return p
}

func createNodes(ctx context.Context, clients []*client.Client, sc Scenario, conc int) error {
	n, first := benchkit.Parallel(ctx, clients, sc.Nodes, conc, func(ctx context.Context, c *client.Client, i int) error {
		_, err := client.For[*corev1.Node](c).Create(ctx, "", Node(i))
		return err
	})
	if n > 0 {
		return fmt.Errorf("%d node creates failed, first: %s", n, first)
	}
	return ctx.Err()
}

// createPods creates the scenario's pods and returns when each create was
// sent. In the baseline mode each pod is bound by the benchmark right
// after its create, round-robin over the nodes.
func createPods(ctx context.Context, clients []*client.Client, sc Scenario, m mode, conc int) ([]time.Time, int, string) {
	starts := make([]time.Time, sc.Pods)
	n, first := benchkit.Parallel(ctx, clients, sc.Pods, conc, func(ctx context.Context, c *client.Client, i int) error {
		p := Pod(i, sc.Affinity)
		starts[i] = time.Now()
		if _, err := client.For[*corev1.Pod](c).Create(ctx, namespace, p); err != nil {
			return fmt.Errorf("create %s: %w", p.Name, err)
		}
		if m != modeBaseline {
			return nil
		}
		b := &corev1.Binding{
			ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: namespace},
			Target:     corev1.ObjectReference{Kind: "Node", Name: fmt.Sprintf("node-%d", i%sc.Nodes)},
		}
		if _, err := c.CreateSubresource(ctx, client.For[*corev1.Pod](c).GVR(), namespace, p.Name, "binding", b, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("bind %s: %w", p.Name, err)
		}
		return nil
	})
	return starts, n, first
}

func warmUp(ctx context.Context, c *client.Client, sched *benchkit.Process) error {
	pods := client.For[*corev1.Pod](c)
	p := Pod(0, false)
	p.Name = "warm-up"
	if _, err := pods.Create(ctx, namespace, p); err != nil {
		return fmt.Errorf("create warm-up pod: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := sched.Alive(); err != nil {
			return err
		}
		got, err := pods.Get(ctx, namespace, p.Name)
		if err == nil && got.Spec.NodeName != "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-scheduler did not bind a warm-up pod within 60s (last error %v)\n%s", err, sched.LogTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling the pod; the deadline decides
		}
	}
}

// waitBound waits for every binding, the overall timeout, or a stall.
func waitBound(ctx context.Context, allBound <-chan struct{}, count *atomic.Int64, timeout time.Duration, procs ...*benchkit.Process) error {
	deadline := time.Now().Add(timeout)
	lastCount, lastProgress := count.Load(), time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-allBound:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case now := <-tick.C:
			for _, p := range procs {
				if p == nil {
					continue
				}
				if err := p.Alive(); err != nil {
					return err
				}
			}
			if c := count.Load(); c != lastCount {
				lastCount, lastProgress = c, now
			}
			if now.After(deadline) {
				return fmt.Errorf("timed out after %v with %d pods bound", timeout, lastCount)
			}
			if now.Sub(lastProgress) > stallTimeout {
				return fmt.Errorf("no binding for %v; %d pods bound", stallTimeout, lastCount)
			}
		}
	}
}

func profilePath(path, scenario string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + scenario + ext
}

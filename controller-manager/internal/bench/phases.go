package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
)

const benchNS = metav1.NamespaceDefault

// ScaleResult is the scale phase.
type ScaleResult struct {
	Replicas int
	// Elapsed runs from the replicas change to the last pod created.
	Elapsed time.Duration
	// Baseline is the benchmark creating the same pods itself at
	// concurrency 64 on the same apiserver.
	Baseline       time.Duration
	MaxPods        int // most pods of the Deployment seen at once
	APICPU, KCMCPU time.Duration
}

// RolloutResult is the rollout phase.
type RolloutResult struct {
	Replicas     int
	Elapsed      time.Duration
	MinAvailable int32 // fewest status.availableReplicas seen
	MinReady     int   // fewest ready pods seen
	MaxPods      int
	APICPU       time.Duration
	KCMCPU       time.Duration
}

// SlicesResult is the slices phase.
type SlicesResult struct {
	Services, Pods int
	// Change is how long writing every pod's readiness took; AfterChange
	// runs from the last of those writes to the EndpointSlices showing
	// every endpoint not ready; Total from the first write.
	Change, AfterChange, Total time.Duration
	Slices                     int
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: image,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}},
		}}},
	}
}

func deployment(name string, replicas int32, image string) *appsv1.Deployment {
	q := intstr.FromString("25%")
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, image),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &q, MaxUnavailable: &q}},
		},
	}
}

// podCounter follows the pods of one app label.
type podCounter struct {
	mu       sync.Mutex
	pods     map[string]bool // name → ready
	max      int
	minReady int
	tracking bool
	changed  chan struct{}
}

func newPodCounter() *podCounter {
	return &podCounter{pods: map[string]bool{}, minReady: -1, changed: make(chan struct{}, 1)}
}

func (pc *podCounter) on(t watch.EventType, p *corev1.Pod) {
	pc.mu.Lock()
	if t == watch.Deleted {
		delete(pc.pods, p.Name)
	} else {
		pc.pods[p.Name] = podReady(p) && p.DeletionTimestamp == nil
	}
	pc.max = max(pc.max, len(pc.pods))
	if pc.tracking {
		ready := 0
		for _, r := range pc.pods {
			if r {
				ready++
			}
		}
		if pc.minReady < 0 || ready < pc.minReady {
			pc.minReady = ready
		}
	}
	pc.mu.Unlock()
	select {
	case pc.changed <- struct{}{}:
	default:
	}
}

func (pc *podCounter) count() int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return len(pc.pods)
}

// waitUntil polls cond (after every change and at least every 100 ms)
// until it holds, the cluster dies, or timeout.
func waitUntil(ctx context.Context, cl *cluster, timeout time.Duration, changed <-chan struct{}, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if aerr := cl.alive(); aerr != nil {
			return aerr
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %v (last error: %v)", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-t.C:
		}
	}
}

func (e *env) scale(ctx context.Context) (*ScaleResult, error) {
	cl, err := e.startCluster(ctx, "scale")
	if err != nil {
		return nil, err
	}
	defer cl.close(e.logf)
	n := e.cfg.ScaleReplicas
	res := &ScaleResult{Replicas: n}

	// Baseline: the same pods created by the benchmark, before any
	// controller runs, in a namespace of their own.
	nsName := "baseline"
	if _, err := client.For[*corev1.Namespace](cl.api.Clients[0]).Create(ctx, "", &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName}}); err != nil {
		return nil, err
	}
	tmpl := podTemplate("baseline", "registry.invalid/app:v1")
	start := time.Now()
	if nerr, first := benchkit.Parallel(ctx, cl.api.Clients, n, 64, func(ctx context.Context, c *client.Client, i int) error {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Labels: tmpl.Labels}, Spec: tmpl.Spec}
		_, err := client.For[*corev1.Pod](c).Create(ctx, nsName, p)
		return err
	}); nerr > 0 {
		return nil, fmt.Errorf("baseline: %d creates failed, first: %s", nerr, first)
	}
	res.Baseline = time.Since(start)
	e.logf("  baseline: %d pod creates by the benchmark in %s", n, benchkit.FormatDuration(res.Baseline))

	if err := cl.startControllerManager(e); err != nil {
		return nil, err
	}
	deps := client.For[*appsv1.Deployment](cl.api.Clients[0])
	d, err := deps.Create(ctx, benchNS, deployment("scale", 0, "registry.invalid/app:v1"))
	if err != nil {
		return nil, err
	}
	// The controller is up once it has made the ReplicaSet.
	if err := waitUntil(ctx, cl, 60*time.Second, nil, "the Deployment's ReplicaSet", func() (bool, error) {
		rss, _, err := client.For[*appsv1.ReplicaSet](cl.api.Clients[0]).List(ctx, benchNS, metav1.ListOptions{})
		return err == nil && len(rss) == 1, err
	}); err != nil {
		return nil, err
	}
	pc := newPodCounter()
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatch(); wg.Wait() }()
	wg.Go(func() { watchPods(wctx, cl.api.Clients[1], benchNS, pc.on) })

	api0, kcm0 := cl.cpu()
	cl.profile(ctx, e, 10)
	start = time.Now()
	if _, err := deps.Patch(ctx, benchNS, d.Name, types.MergePatchType, fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, n)); err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, cl, e.cfg.Timeout, pc.changed, fmt.Sprintf("%d pods", n), func() (bool, error) {
		return pc.count() >= n, nil
	}); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	api1, kcm1 := cl.cpu()
	res.APICPU, res.KCMCPU = api1-api0, kcm1-kcm0
	// Let any over-creation show before reading the maximum: the
	// ReplicaSet's status settles once its expectations are met.
	_ = waitUntil(ctx, cl, 10*time.Second, nil, "ReplicaSet status", func() (bool, error) {
		rss, _, err := client.For[*appsv1.ReplicaSet](cl.api.Clients[0]).List(ctx, benchNS, metav1.ListOptions{})
		return err == nil && len(rss) == 1 && rss[0].Status.Replicas == int32(n), err
	})
	pc.mu.Lock()
	res.MaxPods = pc.max
	pc.mu.Unlock()
	e.logf("  %d pods created by the controller in %s (most seen at once: %d)", n, benchkit.FormatDuration(res.Elapsed), res.MaxPods)
	return res, nil
}

func (e *env) rollout(ctx context.Context) (*RolloutResult, error) {
	cl, err := e.startCluster(ctx, "rollout")
	if err != nil {
		return nil, err
	}
	defer cl.close(e.logf)
	if err := cl.startControllerManager(e); err != nil {
		return nil, err
	}
	n := e.cfg.RolloutReplicas
	res := &RolloutResult{Replicas: n}
	kubelet := startFakeKubelet(ctx, cl.api.Clients, benchNS, 16)
	defer func() { _ = kubelet.stop() }()
	pc := newPodCounter()
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatch(); wg.Wait() }()
	wg.Go(func() { watchPods(wctx, cl.api.Clients[1], benchNS, pc.on) })

	deps := client.For[*appsv1.Deployment](cl.api.Clients[0])
	if _, err := deps.Create(ctx, benchNS, deployment("web", int32(n), "registry.invalid/app:v1")); err != nil {
		return nil, err
	}
	complete := func(gen int64) func() (bool, error) {
		return func() (bool, error) {
			d, err := deps.Get(ctx, benchNS, "web")
			if err != nil {
				return false, err
			}
			s := d.Status
			return s.ObservedGeneration >= gen && s.UpdatedReplicas == int32(n) && s.Replicas == int32(n) &&
				s.AvailableReplicas == int32(n) && pc.count() == n, nil
		}
	}
	start := time.Now()
	if err := waitUntil(ctx, cl, e.cfg.Timeout, pc.changed, "the initial Deployment available", complete(1)); err != nil {
		return nil, err
	}
	e.logf("  %d replicas available after %s (setup)", n, benchkit.FormatDuration(time.Since(start)))

	// Track availability from here on.
	var minAvail atomic.Int32
	minAvail.Store(int32(n))
	wg.Go(func() {
		for wctx.Err() == nil {
			w, err := deps.Watch(wctx, benchNS, metav1.ListOptions{})
			if err != nil {
				waitOrDone(wctx, 200*time.Millisecond)
				continue
			}
			for ev := range w.ResultChan() {
				if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Name == "web" && d.Status.AvailableReplicas < minAvail.Load() {
					minAvail.Store(d.Status.AvailableReplicas)
				}
			}
			w.Stop()
		}
	})
	pc.mu.Lock()
	pc.tracking, pc.max = true, len(pc.pods)
	pc.mu.Unlock()

	api0, kcm0 := cl.cpu()
	cl.profile(ctx, e, 10)
	start = time.Now()
	d, err := deps.Patch(ctx, benchNS, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"c","image":"registry.invalid/app:v2"}]}}}}`))
	if err != nil {
		return nil, err
	}
	if err := waitUntil(ctx, cl, e.cfg.Timeout, pc.changed, "the rolling update", complete(d.Generation)); err != nil {
		return nil, err
	}
	res.Elapsed = time.Since(start)
	api1, kcm1 := cl.cpu()
	res.APICPU, res.KCMCPU = api1-api0, kcm1-kcm0
	res.MinAvailable = minAvail.Load()
	pc.mu.Lock()
	res.MinReady, res.MaxPods = pc.minReady, pc.max
	pc.mu.Unlock()
	if err := kubelet.stop(); err != nil {
		return res, fmt.Errorf("fake kubelet: %w", err)
	}
	e.logf("  rolling update of %d replicas in %s; fewest available %d, fewest ready pods %d, most pods %d",
		n, benchkit.FormatDuration(res.Elapsed), res.MinAvailable, res.MinReady, res.MaxPods)
	return res, nil
}

func (e *env) slices(ctx context.Context) (*SlicesResult, error) {
	cl, err := e.startCluster(ctx, "slices")
	if err != nil {
		return nil, err
	}
	defer cl.close(e.logf)
	nSvc, per := e.cfg.Services, e.cfg.PodsPerService
	nPods := nSvc * per
	res := &SlicesResult{Services: nSvc, Pods: nPods}
	clients := cl.api.Clients
	start := time.Now()
	if nerr, first := benchkit.Parallel(ctx, clients, nSvc, 32, func(ctx context.Context, c *client.Client, i int) error {
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i)},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("svc-%d", i)},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
		}
		_, err := client.For[*corev1.Service](c).Create(ctx, benchNS, svc)
		return err
	}); nerr > 0 {
		return nil, fmt.Errorf("%d service creates failed, first: %s", nerr, first)
	}
	pods := make([]*corev1.Pod, nPods)
	if nerr, first := benchkit.Parallel(ctx, clients, nPods, 64, func(ctx context.Context, c *client.Client, i int) error {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i%nSvc)}},
			Spec:       corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", i%100), Containers: []corev1.Container{{Name: "c", Image: "registry.invalid/app:v1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
		out, err := client.For[*corev1.Pod](c).Create(ctx, benchNS, p)
		if err != nil {
			return err
		}
		ip := fmt.Sprintf("10.%d.%d.%d", 100+i/65536, (i/256)%256, i%256)
		pods[i] = out
		out.Status.PodIP = ip
		return setReady(ctx, c, out, true, ip)
	}); nerr > 0 {
		return nil, fmt.Errorf("%d pod creates failed, first: %s", nerr, first)
	}
	e.logf("  %d services and %d ready pods made in %s", nSvc, nPods, benchkit.FormatDuration(time.Since(start)))

	// Follow the slices: ready endpoints per slice.
	var mu sync.Mutex
	readyBySlice := map[string]int{}
	changed := make(chan struct{}, 1)
	totalReady := func() (int, int) {
		mu.Lock()
		defer mu.Unlock()
		t := 0
		for _, n := range readyBySlice {
			t += n
		}
		return t, len(readyBySlice)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stopWatch(); wg.Wait() }()
	slicesClient := client.For[*discoveryv1.EndpointSlice](clients[1])
	wg.Go(func() {
		for wctx.Err() == nil {
			items, lm, err := slicesClient.List(wctx, benchNS, metav1.ListOptions{})
			if err != nil {
				waitOrDone(wctx, 200*time.Millisecond)
				continue
			}
			mu.Lock()
			clear(readyBySlice)
			for _, s := range items {
				readyBySlice[s.Name] = readyEndpoints(s)
			}
			mu.Unlock()
			w, err := slicesClient.Watch(wctx, benchNS, metav1.ListOptions{ResourceVersion: lm.ResourceVersion})
			if err != nil {
				continue
			}
			for ev := range w.ResultChan() {
				s, ok := ev.Object.(*discoveryv1.EndpointSlice)
				if !ok {
					continue
				}
				mu.Lock()
				if ev.Type == watch.Deleted {
					delete(readyBySlice, s.Name)
				} else {
					readyBySlice[s.Name] = readyEndpoints(s)
				}
				mu.Unlock()
				select {
				case changed <- struct{}{}:
				default:
				}
			}
			w.Stop()
		}
	})

	if err := cl.startControllerManager(e); err != nil {
		return nil, err
	}
	start = time.Now()
	if err := waitUntil(ctx, cl, e.cfg.Timeout, changed, "EndpointSlices with every pod ready", func() (bool, error) {
		t, _ := totalReady()
		return t == nPods, nil
	}); err != nil {
		return nil, err
	}
	e.logf("  EndpointSlices hold %d ready endpoints %s after the controller started (setup)", nPods, benchkit.FormatDuration(time.Since(start)))

	// The bulk readiness change: every pod not ready.
	cl.profile(ctx, e, 30)
	first := time.Now()
	if nerr, firstErr := benchkit.Parallel(ctx, clients, nPods, 64, func(ctx context.Context, c *client.Client, i int) error {
		cur, err := client.For[*corev1.Pod](c).Get(ctx, benchNS, pods[i].Name)
		if err != nil {
			return err
		}
		return setReady(ctx, c, cur, false, cur.Status.PodIP)
	}); nerr > 0 {
		return nil, fmt.Errorf("%d readiness writes failed, first: %s", nerr, firstErr)
	}
	last := time.Now()
	if err := waitUntil(ctx, cl, e.cfg.Timeout, changed, "EndpointSlices with no endpoint ready", func() (bool, error) {
		t, _ := totalReady()
		return t == 0, nil
	}); err != nil {
		return nil, err
	}
	done := time.Now()
	res.Change, res.AfterChange, res.Total = last.Sub(first), done.Sub(last), done.Sub(first)
	_, res.Slices = totalReady()
	e.logf("  %d readiness writes in %s; slices converged %s after the last (%s after the first)", nPods,
		benchkit.FormatDuration(res.Change), benchkit.FormatDuration(res.AfterChange), benchkit.FormatDuration(res.Total))
	return res, nil
}

func readyEndpoints(s *discoveryv1.EndpointSlice) int {
	n := 0
	for _, ep := range s.Endpoints {
		if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
			n++
		}
	}
	return n
}

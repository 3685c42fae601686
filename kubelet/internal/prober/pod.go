package prober

import (
	"context"
	"strings"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
)

// Pod runs the probe workers of one pod. The pod worker owns it: Update
// hands it the pod and the status the pod worker computed and starts the
// workers missing, Stop ends them all and waits for them. The pod worker
// reads the results with Started, Ready and Failed; notify is called when
// one changed. The methods are safe for concurrent use; a nil *Pod probes
// nothing and reports every running container started, ready and alive.
type Pod struct {
	m      *Manager
	notify func()
	logger *zap.Logger

	mu      sync.Mutex
	pod     *corev1.Pod
	status  *corev1.PodStatus
	results map[probeKey]result
	workers map[probeKey]*worker
	stopped bool
	wg      sync.WaitGroup
}

type probeKey struct {
	container string
	kind      Kind
}

// result is a worker's verdict about one container instance.
type result struct {
	containerID string
	result      Result
}

// NewPod returns the probes of one pod; notify is called (from the probe
// workers' goroutines, so it must not block) when a result changes.
func (m *Manager) NewPod(logger *zap.Logger, notify func()) *Pod {
	if logger == nil {
		logger = m.logger
	}
	if notify == nil {
		notify = func() {}
	}
	return &Pod{m: m, notify: notify, logger: logger, results: map[probeKey]result{}, workers: map[probeKey]*worker{}}
}

// Update records the pod and its status, which the workers read at each
// probe, and starts a worker for each probe that has none. The workers
// stop when ctx ends or at Stop.
func (p *Pod) Update(ctx context.Context, pod *corev1.Pod, status *corev1.PodStatus) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.pod, p.status = pod, status.DeepCopy()
	for _, c := range probedContainers(pod) {
		for _, kind := range []Kind{Startup, Readiness, Liveness} {
			key := probeKey{c.Name, kind}
			if _, ok := p.workers[key]; ok || probeOf(kind, c) == nil {
				continue
			}
			wctx, cancel := context.WithCancel(ctx)
			w := &worker{p: p, key: key, cancel: cancel, trigger: make(chan struct{}, 1),
				logger: p.logger.With(zap.String("container", c.Name), zap.Stringer("probe", kind))}
			p.workers[key] = w
			p.wg.Go(func() {
				defer cancel()
				w.run(wctx)
			})
		}
	}
}

// probedContainers are the pod's containers that are probed: sidecars
// (init containers with restartPolicy Always) and regular containers.
func probedContainers(pod *corev1.Pod) []*corev1.Container {
	var out []*corev1.Container
	for i := range pod.Spec.InitContainers {
		if IsSidecar(&pod.Spec.InitContainers[i]) {
			out = append(out, &pod.Spec.InitContainers[i])
		}
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

// IsSidecar reports whether an init container is a sidecar (a
// restartable init container): it runs beside the regular containers.
func IsSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// Stop stops the workers and waits for them; Update starts none after it.
func (p *Pod) Stop() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.stopped = true
	for _, w := range p.workers {
		w.cancel()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Started reports whether the running container instance containerID of
// c has started: it has no startup probe, or that probe succeeded.
func (p *Pod) Started(c *corev1.Container, containerID string) bool {
	if p == nil || c.StartupProbe == nil {
		return true
	}
	return p.get(c.Name, Startup, containerID) == Success
}

// Ready reports whether the running container instance is ready: started,
// and without a readiness probe or with that probe succeeding.
func (p *Pod) Ready(c *corev1.Container, containerID string) bool {
	if !p.Started(c, containerID) {
		return false
	}
	if p == nil || c.ReadinessProbe == nil {
		return true
	}
	return p.get(c.Name, Readiness, containerID) == Success
}

// Failed reports whether the container instance failed its liveness or
// startup probe, and which, so that it is to be restarted.
func (p *Pod) Failed(c *corev1.Container, containerID string) (Kind, bool) {
	if p == nil {
		return 0, false
	}
	if c.StartupProbe != nil && p.get(c.Name, Startup, containerID) == Failure {
		return Startup, true
	}
	if c.LivenessProbe != nil && p.get(c.Name, Liveness, containerID) == Failure {
		return Liveness, true
	}
	return 0, false
}

// get is the result for the container instance; Unknown when the worker
// has not seen that instance yet.
func (p *Pod) get(container string, kind Kind, containerID string) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	r, ok := p.results[probeKey{container, kind}]
	if !ok || r.containerID != trimID(containerID) {
		return Unknown
	}
	return r.result
}

// set records a result and tells the pod worker when it changed.
func (p *Pod) set(key probeKey, containerID string, r Result) {
	p.mu.Lock()
	old, ok := p.results[key]
	nr := result{containerID: containerID, result: r}
	p.results[key] = nr
	p.mu.Unlock()
	if !ok || old != nr {
		p.notify()
	}
}

// snapshot is the latest pod and status the pod worker handed over.
func (p *Pod) snapshot() (*corev1.Pod, *corev1.PodStatus) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod, p.status
}

// trigger makes the container's worker of kind probe now.
func (p *Pod) trigger(container string, kind Kind) {
	p.mu.Lock()
	w, ok := p.workers[probeKey{container, kind}]
	p.mu.Unlock()
	if ok {
		select {
		case w.trigger <- struct{}{}:
		default:
		}
	}
}

func trimID(id string) string { return strings.TrimPrefix(id, "containerd://") }

package prober

import (
	"context"
	"math/rand/v2"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
)

// worker probes one container of a pod with one kind of probe, as
// upstream's prober worker: probe at once, then every periodSeconds.
type worker struct {
	p       *Pod
	key     probeKey
	cancel  context.CancelFunc
	trigger chan struct{}
	logger  *zap.Logger

	// Owned by the worker's goroutine.
	containerID string // the container instance probed
	lastResult  Result
	resultRun   int  // how many lastResult in a row
	onHold      bool // a liveness or startup failure: wait for a new instance
}

func initialResult(k Kind) Result {
	switch k {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	default:
		return Unknown
	}
}

func (w *worker) run(ctx context.Context) {
	w.logger.Debug("probe worker started")
	defer w.logger.Debug("probe worker stopped")
	clk := w.p.m.clock
	period := 10 * time.Second
	if pod, _ := w.p.snapshot(); pod != nil {
		if c := containerSpec(pod, w.key.container); c != nil {
			if spec := probeOf(w.key.kind, c); spec != nil && spec.PeriodSeconds > 0 {
				period = time.Duration(spec.PeriodSeconds) * time.Second
			}
		}
	}
	// Right after the kubelet started, spread the first probes over a
	// period, as upstream does.
	if period > clk.Since(w.p.m.start) {
		t := clk.NewTimer(time.Duration(rand.Int64N(int64(period))))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
	ticker := clk.NewTicker(period)
	defer ticker.Stop()
	for w.doProbe(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		case <-w.trigger:
		}
	}
}

// doProbe probes once when the container is due for it, and updates the
// result past the thresholds. It returns false when there is nothing left
// to probe.
func (w *worker) doProbe(ctx context.Context) bool {
	pod, status := w.p.snapshot()
	if pod == nil || status == nil {
		return true
	}
	c := containerSpec(pod, w.key.container)
	if c == nil {
		return false
	}
	spec := probeOf(w.key.kind, c)
	if spec == nil {
		return false
	}
	var cst *corev1.ContainerStatus
	for _, sts := range [][]corev1.ContainerStatus{status.ContainerStatuses, status.InitContainerStatuses} {
		for i := range sts {
			if sts[i].Name == w.key.container {
				cst = &sts[i]
			}
		}
	}
	if cst == nil || cst.ContainerID == "" {
		// Not created yet.
		return true
	}
	id := trimID(cst.ContainerID)
	if w.containerID != id {
		// A new instance: start over from the initial result.
		w.containerID = id
		w.p.set(w.key, id, initialResult(w.key.kind))
		w.onHold, w.lastResult, w.resultRun = false, Unknown, 0
	}
	if w.onHold {
		return true
	}
	if cst.State.Running == nil {
		w.p.set(w.key, id, Failure)
		// Done when the container will not run again.
		return cst.State.Terminated == nil || pod.Spec.RestartPolicy != corev1.RestartPolicyNever || IsSidecar(c)
	}
	if pod.DeletionTimestamp != nil && w.key.kind != Readiness {
		// The pod is shutting down: no more restarts.
		w.p.set(w.key, id, Success)
		return false
	}
	if int32(w.p.m.clock.Since(cst.State.Running.StartedAt.Time).Seconds()) < spec.InitialDelaySeconds {
		return true
	}
	if w.p.Started(c, id) {
		if w.key.kind == Startup {
			return true
		}
	} else if w.key.kind != Startup {
		// Liveness and readiness wait for the startup probe.
		return true
	}

	res, err := w.p.m.probe(ctx, w.key.kind, pod, status, c, cst.ContainerID)
	if err != nil {
		// The probe could not run: no verdict.
		return true
	}
	if res == w.lastResult {
		w.resultRun++
	} else {
		w.lastResult, w.resultRun = res, 1
	}
	failureThreshold, successThreshold := int(spec.FailureThreshold), int(spec.SuccessThreshold)
	if failureThreshold <= 0 {
		failureThreshold = 3
	}
	if successThreshold <= 0 || w.key.kind != Readiness {
		successThreshold = 1
	}
	if (res == Failure && w.resultRun < failureThreshold) || (res == Success && w.resultRun < successThreshold) {
		return true
	}
	w.p.set(w.key, id, res)
	switch {
	case w.key.kind != Readiness && res == Failure:
		// The pod worker restarts the container; probe its next instance.
		w.logger.Info("container failed its probe", zap.String("containerID", id), zap.Int("failures", w.resultRun))
		w.onHold, w.resultRun = true, 0
	case w.key.kind == Startup && res == Success:
		w.p.trigger(w.key.container, Readiness)
	}
	return true
}

// containerSpec is the probed container (regular or sidecar) named name.
func containerSpec(pod *corev1.Pod, name string) *corev1.Container {
	for _, c := range probedContainers(pod) {
		if c.Name == name {
			return c
		}
	}
	return nil
}

package pods

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/coxswain/coxswain/kubelet/internal/prober"
)

// Event reasons of lifecycle hooks, upstream's.
const (
	reasonFailedPostStartHook = "FailedPostStartHook"
	reasonFailedPreStopHook   = "FailedPreStopHook"
)

// minKillGrace is the least a container gets to stop after its preStop
// hook, as upstream's minimumGracePeriodInSeconds.
const minKillGrace = 2 * time.Second

// newHookClient is the lifecycle hooks' HTTP client: no proxy, no
// keep-alives, no certificate verification (as upstream's).
func newHookClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // hooks do not verify, as upstream
		DisableKeepAlives: true,
		Proxy:             nil,
	}}
}

// runHook runs a lifecycle handler for the container instance id, as
// upstream's handlerRunner: exec in the container (exit 0 is success),
// an HTTP GET to the pod (any response is success), or a sleep. ctx bounds
// it. On failure it returns upstream's message with the error.
func (w *worker) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler) (string, error) {
	switch {
	case h.Exec != nil:
		timeout := 24 * time.Hour
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
		}
		out, code, err := w.m.rt.Exec(ctx, id, h.Exec.Command, timeout)
		if err == nil && code != 0 {
			err = fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
		}
		if err != nil {
			return fmt.Sprintf("Exec lifecycle hook (%v) for Container %q in Pod %q failed - error: %v, message: %q", h.Exec.Command, c.Name, podString(pod), err, string(out)), err
		}
		return "", nil
	case h.HTTPGet != nil:
		podIP := ""
		if w.sandbox != nil && len(w.sandbox.ips) > 0 {
			podIP = w.sandbox.ips[0]
		}
		err := w.httpHook(ctx, h.HTTPGet, c, podIP)
		if err != nil {
			return fmt.Sprintf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v", h.HTTPGet.Path, c.Name, podString(pod), err), err
		}
		return "", nil
	case h.Sleep != nil:
		t := time.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			return "", nil
		case <-ctx.Done():
			err := errors.New("container terminated before sleep hook finished")
			return fmt.Sprintf("Sleep lifecycle hook (%d) for Container %q in Pod %q failed - error: %v", h.Sleep.Seconds, c.Name, podString(pod), err), err
		}
	default:
		err := fmt.Errorf("invalid handler: %v", h)
		return fmt.Sprintf("Cannot run handler: %v", err), err
	}
}

func (w *worker) httpHook(ctx context.Context, h *corev1.HTTPGetAction, c *corev1.Container, podIP string) error {
	req, err := prober.NewLifecycleRequest(ctx, h, c, podIP)
	if err != nil {
		return err
	}
	res, err := w.m.hookClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 10<<10))
	return res.Body.Close()
}

// postStart runs the container's postStart hook right after it started.
// When the hook fails the container is killed, with upstream's
// FailedPostStartHook Event, and restarted as its restart policy says.
// It returns false then.
func (w *worker) postStart(ctx context.Context, pod *corev1.Pod, c *corev1.Container, cs *containerState) bool {
	if c.Lifecycle == nil || c.Lifecycle.PostStart == nil {
		return true
	}
	// A deletion of the pod ends the hook.
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(w.deleted, cancel)()
	msg, err := w.runHook(hctx, pod, c, cs.id, c.Lifecycle.PostStart)
	if err == nil {
		return true
	}
	if hctx.Err() != nil && ctx.Err() == nil {
		// The pod is being deleted: the kill comes with the deletion.
		return false
	}
	w.logger.Info("postStart hook failed", zap.String("container", c.Name), zap.String("message", msg), zap.Error(err))
	// The message stays out of the Event so that secrets do not leak, as upstream.
	w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailedPostStartHook, "PostStartHook failed")
	if err := w.stopContainer(ctx, pod, c, cs.id, w.podGrace(pod)); err != nil {
		w.logger.Warn("kill container after its postStart hook failed", zap.String("container", c.Name), zap.Error(err))
	}
	return false
}

// stopContainer runs the container's preStop hook, within grace, then
// stops it (SIGTERM, SIGKILL after what is left of grace, at least 2 s
// after a hook). c nil: no hook.
func (w *worker) stopContainer(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, grace time.Duration) error {
	if pod != nil && c != nil && c.Lifecycle != nil && c.Lifecycle.PreStop != nil && grace > 0 {
		start := time.Now()
		hctx, cancel := context.WithTimeout(ctx, grace)
		msg, err := w.runHook(hctx, pod, c, id, c.Lifecycle.PreStop)
		timedOut := hctx.Err() != nil && ctx.Err() == nil
		cancel()
		switch {
		case err == nil:
		case timedOut:
			w.logger.Info("preStop hook did not complete in the grace period", zap.String("container", c.Name), zap.Duration("grace", grace))
		default:
			w.logger.Info("preStop hook failed", zap.String("container", c.Name), zap.String("message", msg), zap.Error(err))
			w.event(pod, c.Name, corev1.EventTypeWarning, reasonFailedPreStopHook, "PreStopHook failed")
		}
		grace = max(grace-time.Since(start), minKillGrace)
	}
	return w.m.rt.Stop(ctx, id, grace)
}

// podGrace is the pod's termination grace period.
func (w *worker) podGrace(pod *corev1.Pod) time.Duration {
	if pod != nil && pod.Spec.TerminationGracePeriodSeconds != nil {
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return time.Duration(corev1.DefaultTerminationGracePeriodSeconds) * time.Second
}

// event records an Event about one of the pod's containers.
func (w *worker) event(pod *corev1.Pod, container, eventType, reason, msg string) {
	if w.m.cfg.Recorder != nil {
		w.m.cfg.Recorder.Eventf(prober.ContainerRef(pod, container), eventType, reason, "", "%s", msg)
	}
}

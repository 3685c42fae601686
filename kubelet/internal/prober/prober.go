// Package prober runs the containers' liveness, readiness and startup probes
// as upstream's kubelet prober does: one worker per container and probe
// kind, probing every periodSeconds after initialDelaySeconds (exec through
// containerd; httpGet, tcpSocket and grpc from the node's network namespace
// to the pod IP), a result changing only after successThreshold or
// failureThreshold equal results in a row. The startup probe holds the
// other two back until it succeeds. The pod worker owns a Pod of workers,
// reads the results to set the containers' ready and started fields, and
// restarts a container whose liveness or startup probe failed.
package prober

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/clock"

	"github.com/coxswain/coxswain/kubelet/internal/expansion"
)

// Kind is a probe kind.
type Kind int

// The probe kinds.
const (
	Liveness Kind = iota
	Readiness
	Startup
)

func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	case Startup:
		return "Startup"
	default:
		return "UNKNOWN"
	}
}

// Result is a probe worker's current verdict about a container.
type Result int

// The results, as upstream's prober/results.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "Success"
	case Failure:
		return "Failure"
	default:
		return "UNKNOWN"
	}
}

// outcome is what one probe run found (upstream's pkg/probe.Result).
type outcome int

const (
	outSuccess outcome = iota
	outWarning         // a success with a note (a redirect not followed)
	outFailure
	outUnknown
)

func (o outcome) String() string {
	switch o {
	case outSuccess:
		return "success"
	case outWarning:
		return "warning"
	case outFailure:
		return "failure"
	default:
		return "unknown"
	}
}

// Event reasons and actions.
const (
	ReasonUnhealthy    = "Unhealthy"
	ReasonProbeWarning = "ProbeWarning"
)

// Recorder records Events about an object; pkg/events' *Recorder is one.
type Recorder interface {
	Eventf(obj runtime.Object, eventType, reason, action, format string, args ...any)
}

// ContainerRef refers to a container of pod in Events, as upstream's
// kubelet does (fieldPath spec.containers{name}, or
// spec.initContainers{name} for an init container).
func ContainerRef(pod *corev1.Pod, container string) *corev1.ObjectReference {
	field := "spec.containers{" + container + "}"
	for _, c := range pod.Spec.InitContainers {
		if c.Name == container {
			field = "spec.initContainers{" + container + "}"
		}
	}
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: field,
	}
}

// Execer runs a command in a running container (containerruntime's
// *Runtime). It returns the combined output and the exit code; a timeout
// is an error wrapping context.DeadlineExceeded.
type Execer interface {
	Exec(ctx context.Context, containerID string, cmd []string, timeout time.Duration) ([]byte, int, error)
}

// Config configures a Manager.
type Config struct {
	Exec     Execer
	Recorder Recorder         // nil: no Events
	Logger   *zap.Logger      // nil: no logs
	Clock    clock.WithTicker // nil: the real clock
}

// Manager holds what the probes of every pod share: the exec runner, the
// HTTP transport, the event recorder and the clock.
type Manager struct {
	exec      Execer
	rec       Recorder
	logger    *zap.Logger
	clock     clock.WithTicker
	start     time.Time
	transport http.RoundTripper
	// probe runs one probe; tests replace it.
	probe func(ctx context.Context, kind Kind, pod *corev1.Pod, status *corev1.PodStatus, c *corev1.Container, containerID string) (Result, error)
}

// NewManager returns a Manager.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	m := &Manager{exec: cfg.Exec, rec: cfg.Recorder, logger: cfg.Logger, clock: cfg.Clock, start: cfg.Clock.Now(), transport: newProbeTransport()}
	m.probe = m.runProbe
	return m
}

// maxProbeRetries is how often a probe that errored (not failed) is run
// again at once, as upstream.
const maxProbeRetries = 3

// runProbe runs the container's probe of kind once (with retries on
// errors) and records an Event unless it succeeded. An error means the
// probe could not run; its result is to be ignored.
func (m *Manager) runProbe(ctx context.Context, kind Kind, pod *corev1.Pod, status *corev1.PodStatus, c *corev1.Container, containerID string) (Result, error) {
	spec := probeOf(kind, c)
	if spec == nil {
		return Success, nil
	}
	var (
		out    outcome
		output string
		err    error
	)
	for range maxProbeRetries {
		out, output, err = m.runOnce(ctx, spec, status, c, containerID)
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	// The logger is built only when something is logged: most probes
	// succeed, a hundred a second on a busy node.
	logger := func() *zap.Logger {
		return m.logger.With(zap.String("pod", pod.Namespace+"/"+pod.Name), zap.String("container", c.Name), zap.Stringer("probe", kind))
	}
	if ctx.Err() != nil {
		// The pod worker stopped the probe: no verdict and no Event.
		return Failure, fmt.Errorf("%s probe of %s: %w", kind, c.Name, ctx.Err())
	}
	if err != nil {
		logger().Info("probe errored", zap.Error(err))
		m.event(pod, c.Name, corev1.EventTypeWarning, ReasonUnhealthy, "%s probe errored and resulted in %s state: %s", kind, out, err)
		return Failure, fmt.Errorf("%s probe of %s: %w", kind, c.Name, err)
	}
	switch out {
	case outSuccess:
		if ce := m.logger.Check(zap.DebugLevel, "probe succeeded"); ce != nil {
			logger().Debug("probe succeeded", zap.String("output", output))
		}
		return Success, nil
	case outWarning:
		m.event(pod, c.Name, corev1.EventTypeWarning, ReasonProbeWarning, "%s probe warning: %s", kind, output)
		return Success, nil
	case outFailure:
		logger().Info("probe failed", zap.String("output", output))
		m.event(pod, c.Name, corev1.EventTypeWarning, ReasonUnhealthy, "%s probe failed: %s", kind, output)
		return Failure, nil
	default:
		return Failure, nil
	}
}

// event records a plain core/v1 Event (no action), as upstream's kubelet.
func (m *Manager) event(pod *corev1.Pod, container, eventType, reason, format string, args ...any) {
	if m.rec != nil {
		m.rec.Eventf(ContainerRef(pod, container), eventType, reason, "", format, args...)
	}
}

func probeOf(kind Kind, c *corev1.Container) *corev1.Probe {
	switch kind {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	case Startup:
		return c.StartupProbe
	}
	return nil
}

// runOnce runs the probe's handler once.
func (m *Manager) runOnce(ctx context.Context, p *corev1.Probe, status *corev1.PodStatus, c *corev1.Container, containerID string) (outcome, string, error) {
	timeout := time.Duration(p.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second
	}
	switch {
	case p.Exec != nil:
		return m.execProbe(ctx, containerID, expandCommand(p.Exec.Command, c.Env), timeout)
	case p.HTTPGet != nil:
		port, err := resolvePort(p.HTTPGet.Port, c)
		if err != nil {
			return outUnknown, "", err
		}
		host := p.HTTPGet.Host
		if host == "" {
			host = status.PodIP
		}
		req, err := newHTTPRequest(ctx, p.HTTPGet, host, port)
		if err != nil {
			return outUnknown, "", err
		}
		return m.httpProbe(req, timeout)
	case p.TCPSocket != nil:
		port, err := resolvePort(p.TCPSocket.Port, c)
		if err != nil {
			return outUnknown, "", err
		}
		host := p.TCPSocket.Host
		if host == "" {
			host = status.PodIP
		}
		return tcpProbe(ctx, net.JoinHostPort(host, strconv.Itoa(port)), timeout)
	case p.GRPC != nil:
		service := ""
		if p.GRPC.Service != nil {
			service = *p.GRPC.Service
		}
		return grpcProbe(ctx, net.JoinHostPort(status.PodIP, strconv.Itoa(int(p.GRPC.Port))), service, timeout)
	}
	return outUnknown, "", fmt.Errorf("probe of container %q has no handler", c.Name)
}

// resolvePort is the probe's port: a number, or the name of one of the
// container's ports (or a number written as a string).
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	port := -1
	switch p.Type {
	case intstr.Int:
		port = p.IntValue()
	case intstr.String:
		found := false
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				port, found = int(cp.ContainerPort), true
				break
			}
		}
		if !found {
			n, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return -1, fmt.Errorf("container %q has no port named %q", c.Name, p.StrVal)
			}
			port = n
		}
	}
	if port <= 0 || port > 65535 {
		return -1, fmt.Errorf("invalid port number: %d", port)
	}
	return port, nil
}

// expandCommand expands $(VAR) in the command with the container's env
// variables that have plain values, as upstream does for exec probes.
func expandCommand(cmd []string, env []corev1.EnvVar) []string {
	vars := map[string]string{}
	for _, e := range env {
		if e.ValueFrom == nil {
			vars[e.Name] = expansion.Expand(e.Value, vars)
		}
	}
	out := make([]string, len(cmd))
	for i, s := range cmd {
		out[i] = expansion.Expand(s, vars)
	}
	return out
}

// execProbe runs the command in the container: exit 0 is a success, any
// other exit a failure with the output, a timeout a failure.
func (m *Manager) execProbe(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (outcome, string, error) {
	if m.exec == nil {
		return outUnknown, "", errors.New("exec probes are not supported by this kubelet")
	}
	out, code, err := m.exec.Exec(ctx, strings.TrimPrefix(containerID, "containerd://"), cmd, timeout)
	switch {
	case err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return outFailure, fmt.Sprintf("command %q timed out", strings.Join(cmd, " ")), nil
	case err != nil:
		return outUnknown, "", err
	case code != 0:
		return outFailure, string(out), nil
	default:
		return outSuccess, string(out), nil
	}
}

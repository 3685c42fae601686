package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/pkg/client"
)

// TestKubeletProbes runs pods with probes on real containerd: an exec
// readiness probe the test makes pass and fail, httpGet and tcpSocket
// probes against busybox httpd (from the node's network namespace to the
// pod IP), a failing liveness probe that restarts its container, and a
// probe on a port name the container does not declare.
func TestKubeletProbes(t *testing.T) {
	k := startTestKubelet(t, "kubelet-probes")
	ctx := context.Background()
	// Probes every second, failing at once: the test waits less.
	probe := func(h corev1.ProbeHandler) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: h, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	}
	httpGet := func(path string, port intstr.IntOrString) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}
	}
	const httpd = `mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www`
	webPorts := []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}

	// An exec readiness probe on a file the test creates and removes.
	readyExec := k.busyboxPod("ready-exec", "sleep 3600", corev1.RestartPolicyAlways)
	readyExec.Spec.Containers[0].ReadinessProbe = probe(corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}})

	// httpd: started once its port opens (tcpSocket), ready when
	// /index.html answers (httpGet on the named port), alive likewise.
	web := k.busyboxPod("web", httpd, corev1.RestartPolicyAlways)
	web.Spec.Containers[0].Ports = webPorts
	web.Spec.Containers[0].StartupProbe = probe(corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}})
	web.Spec.Containers[0].StartupProbe.FailureThreshold = 30
	web.Spec.Containers[0].ReadinessProbe = probe(httpGet("/index.html", intstr.FromString("http")))
	web.Spec.Containers[0].LivenessProbe = probe(httpGet("/index.html", intstr.FromInt32(8080)))
	web.Spec.Containers[0].LivenessProbe.FailureThreshold = 3

	// httpd with a liveness probe on a path it does not serve (404). The
	// pod's grace period is long and httpd, as pid 1, ignores SIGTERM: the
	// probe's own grace period of 1 s is what makes the restart quick.
	unhealthy := k.busyboxPod("unhealthy", httpd, corev1.RestartPolicyAlways)
	podGrace, probeGrace := int64(120), int64(1)
	unhealthy.Spec.TerminationGracePeriodSeconds = &podGrace
	unhealthy.Spec.Containers[0].Ports = webPorts
	unhealthy.Spec.Containers[0].LivenessProbe = probe(httpGet("/healthz", intstr.FromInt32(8080)))
	unhealthy.Spec.Containers[0].LivenessProbe.FailureThreshold = 2
	unhealthy.Spec.Containers[0].LivenessProbe.TerminationGracePeriodSeconds = &probeGrace

	// A readiness probe on a port name the container does not declare.
	badPort := k.busyboxPod("bad-port", "sleep 3600", corev1.RestartPolicyAlways)
	badPort.Spec.Containers[0].ReadinessProbe = probe(httpGet("/", intstr.FromString("metrics")))

	for _, p := range []*corev1.Pod{readyExec, web, unhealthy, badPort} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}

	// (a) Readiness: not ready while the probe fails, ready once it passes,
	// not ready again when it fails again.
	var id string
	k.waitPod(t, "ready-exec", "Running and not ready, its probe failing", 60*time.Second, func(p *corev1.Pod) error {
		cs, err := runningContainer(p)
		if err != nil {
			return err
		}
		id = strings.TrimPrefix(cs.ContainerID, "containerd://")
		return wantReady(p, false)
	})
	k.waitEvent(t, "ready-exec", corev1.EventTypeWarning, "Unhealthy", "Readiness probe failed: cat: can't open '/tmp/ready'", 30*time.Second)
	if p, err := k.pods.Get(ctx, "default", "ready-exec"); err != nil || wantReady(p, false) != nil {
		t.Fatalf("ready-exec became ready before its probe passed: %v", err)
	}
	k.exec(t, id, "touch", "/tmp/ready")
	k.waitPod(t, "ready-exec", "Ready", 30*time.Second, func(p *corev1.Pod) error { return wantReady(p, true) })
	k.exec(t, id, "rm", "/tmp/ready")
	k.waitPod(t, "ready-exec", "not Ready again", 30*time.Second, func(p *corev1.Pod) error { return wantReady(p, false) })

	// httpGet and tcpSocket from the node to the pod IP: started and ready.
	k.waitPod(t, "web", "started and Ready", 60*time.Second, func(p *corev1.Pod) error {
		cs, err := runningContainer(p)
		if err != nil {
			return err
		}
		if cs.Started == nil || !*cs.Started {
			return fmt.Errorf("not started")
		}
		return wantReady(p, true)
	})

	// (b) Liveness: the failing container is killed and restarted.
	k.waitPod(t, "unhealthy", "restarted after failing its liveness probe", 60*time.Second, func(p *corev1.Pod) error {
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].RestartCount < 1 {
			return fmt.Errorf("container statuses %+v", cs)
		}
		if cs[0].LastTerminationState.Terminated == nil {
			return fmt.Errorf("restartCount %d without a last termination state", cs[0].RestartCount)
		}
		return nil
	})
	k.waitEvent(t, "unhealthy", corev1.EventTypeWarning, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 404", 30*time.Second)
	k.waitEvent(t, "unhealthy", corev1.EventTypeNormal, "Killing", "Container c failed liveness probe, will be restarted", 30*time.Second)

	// The bad port: an Event says why, the pod runs on, never ready.
	k.waitEvent(t, "bad-port", corev1.EventTypeWarning, "Unhealthy", `Readiness probe errored and resulted in unknown state: container "c" has no port named "metrics"`, 30*time.Second)

	// Meanwhile the other pods were untouched: running, never restarted.
	for _, name := range []string{"ready-exec", "web", "bad-port"} {
		p, err := k.pods.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := runningContainer(p)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if cs.RestartCount != 0 {
			t.Errorf("%s: restartCount = %d, want 0", name, cs.RestartCount)
		}
		if name == "bad-port" && (cs.Ready || wantReady(p, false) != nil) {
			t.Errorf("bad-port is ready: %+v", p.Status.Conditions)
		}
	}
}

// waitPod waits until check passes on the pod.
func (k *testKubelet) waitPod(t *testing.T, name, what string, timeout time.Duration, check func(*corev1.Pod) error) {
	t.Helper()
	waitFor(t, name+" "+what, timeout, func() (bool, error) {
		p, err := k.pods.Get(context.Background(), "default", name)
		if err != nil {
			return false, err
		}
		err = check(p)
		return err == nil, err
	})
}

// waitEvent waits for an Event about the pod with the reason and a
// message containing msg.
func (k *testKubelet) waitEvent(t *testing.T, pod, eventType, reason, msg string, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("event %s %q about %s", reason, msg, pod), timeout, func() (bool, error) {
		evs, _, err := client.For[*corev1.Event](k.env.Client).List(context.Background(), "default", metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		var seen []string
		for _, ev := range evs {
			if ev.InvolvedObject.Name != pod {
				continue
			}
			if ev.Reason == reason && ev.Type == eventType && strings.Contains(ev.Message, msg) {
				if ev.Source.Component != "kubelet" || ev.InvolvedObject.FieldPath != "spec.containers{c}" {
					t.Errorf("event source %q, fieldPath %q; want kubelet, spec.containers{c}", ev.Source.Component, ev.InvolvedObject.FieldPath)
				}
				return true, nil
			}
			seen = append(seen, ev.Type+" "+ev.Reason+": "+ev.Message)
		}
		return false, fmt.Errorf("events about %s: %q", pod, seen)
	})
}

// exec runs a command in a container through the kubelet's runtime.
func (k *testKubelet) exec(t *testing.T, id string, cmd ...string) {
	t.Helper()
	out, code, err := k.server.Runtime.Exec(context.Background(), id, cmd, 10*time.Second)
	if err != nil || code != 0 {
		t.Fatalf("exec %q: exit %d, %v: %s", cmd, code, err, out)
	}
}

// runningContainer is the pod's one container status, running.
func runningContainer(p *corev1.Pod) (*corev1.ContainerStatus, error) {
	if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
		return nil, fmt.Errorf("phase %s, container statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
	}
	return &p.Status.ContainerStatuses[0], nil
}

// wantReady checks the container's ready field and the pod's Ready and
// ContainersReady conditions.
func wantReady(p *corev1.Pod, ready bool) error {
	cs, err := runningContainer(p)
	if err != nil {
		return err
	}
	if cs.Ready != ready {
		return fmt.Errorf("container ready = %v", cs.Ready)
	}
	want := corev1.ConditionFalse
	if ready {
		want = corev1.ConditionTrue
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		var got corev1.ConditionStatus
		for _, c := range p.Status.Conditions {
			if c.Type == ct {
				got = c.Status
			}
		}
		if got != want {
			return fmt.Errorf("condition %s = %q, want %s", ct, got, want)
		}
	}
	return nil
}

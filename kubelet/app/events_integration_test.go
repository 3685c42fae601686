package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/pkg/client"
)

// podEvents lists the kubelet's Events about the pod's container c as
// "Type Reason: message", oldest first.
func (k *testKubelet) podEvents(t *testing.T, pod string) []string {
	t.Helper()
	evs, _, err := client.For[*corev1.Event](k.env.Client).List(context.Background(), "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ev := range evs {
		if ev.InvolvedObject.Name == pod && ev.Source.Component == "kubelet" {
			out = append(out, ev.Type+" "+ev.Reason+": "+ev.Message)
		}
	}
	return out
}

// TestKubeletEventsAndTerminationMessages checks upstream's container
// Events (Pulled as the image is present, Created, Started, Killing on
// deletion; Pulling, Failed and BackOff for an image that cannot be
// pulled; BackOff for a crash-looping container), that kubectl describe
// shows them, and the termination messages: the file at the default and at
// a custom terminationMessagePath, and FallbackToLogsOnError.
func TestKubeletEventsAndTerminationMessages(t *testing.T) {
	k := startTestKubelet(t, "kubelet-events")
	ctx := context.Background()

	ok := k.busyboxPod("ok", "exec sleep 3600", corev1.RestartPolicyAlways)
	crash := k.busyboxPod("crash", "exit 1", corev1.RestartPolicyAlways)
	badImage := k.busyboxPod("bad-image", "true", corev1.RestartPolicyAlways)
	badImage.Spec.Containers[0].Image = "127.0.0.1:1/coxswain/nothing:v1"
	termFile := k.busyboxPod("term-file", "printf 'all done' > /dev/termination-log; exit 0", corev1.RestartPolicyNever)
	termCustom := k.busyboxPod("term-custom", "echo 'custom path' > /tmp/why; exit 2", corev1.RestartPolicyNever)
	termCustom.Spec.Containers[0].TerminationMessagePath = "/tmp/why"
	var script strings.Builder
	for i := range 100 {
		fmt.Fprintf(&script, "echo line %d; ", i)
	}
	script.WriteString("exit 3")
	termLogs := k.busyboxPod("term-logs", script.String(), corev1.RestartPolicyNever)
	termLogs.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	// With FallbackToLogsOnError a success has no message from the logs.
	termLogsOK := k.busyboxPod("term-logs-ok", "echo fine", corev1.RestartPolicyNever)
	termLogsOK.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	for _, p := range []*corev1.Pod{ok, crash, badImage, termFile, termCustom, termLogs, termLogsOK} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}

	k.waitPod(t, "ok", "Running", 60*time.Second, func(p *corev1.Pod) error {
		_, err := runningContainer(p)
		return err
	})
	k.waitEvent(t, "ok", corev1.EventTypeNormal, "Pulled", `Container image "coxswain/busybox:latest" already present on machine`, 10*time.Second)
	k.waitEvent(t, "ok", corev1.EventTypeNormal, "Created", "Created container c", 10*time.Second)
	k.waitEvent(t, "ok", corev1.EventTypeNormal, "Started", "Started container c", 10*time.Second)

	k.waitEvent(t, "bad-image", corev1.EventTypeNormal, "Pulling", `Pulling image "127.0.0.1:1/coxswain/nothing:v1"`, 30*time.Second)
	k.waitEvent(t, "bad-image", corev1.EventTypeWarning, "Failed", `Failed to pull image "127.0.0.1:1/coxswain/nothing:v1"`, 30*time.Second)
	k.waitEvent(t, "bad-image", corev1.EventTypeWarning, "Failed", "Error: ErrImagePull", 30*time.Second)
	k.waitEvent(t, "bad-image", corev1.EventTypeNormal, "BackOff", `Back-off pulling image "127.0.0.1:1/coxswain/nothing:v1"`, 30*time.Second)
	k.waitEvent(t, "bad-image", corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff", 30*time.Second)
	k.waitPod(t, "bad-image", "waiting in ImagePullBackOff", 30*time.Second, func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil ||
			p.Status.ContainerStatuses[0].State.Waiting.Reason != "ImagePullBackOff" {
			return fmt.Errorf("statuses %+v", p.Status.ContainerStatuses)
		}
		return nil
	})

	crashPod, err := k.pods.Get(ctx, "default", "crash")
	if err != nil {
		t.Fatal(err)
	}
	k.waitEvent(t, "crash", corev1.EventTypeWarning, "BackOff",
		fmt.Sprintf("Back-off restarting failed container c in pod crash_default(%s)", crashPod.UID), 60*time.Second)

	// Dead containers: at most one earlier instance is kept (upstream's
	// --maximum-dead-containers-per-container=1), older ones go with
	// their logs.
	k.waitPod(t, "crash", "restarted twice", 60*time.Second, func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].RestartCount < 2 {
			return fmt.Errorf("statuses %+v", p.Status.ContainerStatuses)
		}
		return nil
	})
	waitFor(t, "the crash pod's oldest instance to be collected", 30*time.Second, func() (bool, error) {
		cs, err := k.server.Runtime.List(ctx, string(crashPod.UID))
		if err != nil {
			return false, err
		}
		var ids []string
		for _, c := range cs {
			if c.Labels[containerruntime.LabelKind] == "container" {
				ids = append(ids, c.ID)
			}
		}
		if len(ids) > 2 {
			return false, fmt.Errorf("containers %q: want the latest and at most one dead", ids)
		}
		for _, id := range ids {
			if strings.HasSuffix(id, "-c-0") {
				return false, fmt.Errorf("containers %q: the first instance is still there", ids)
			}
		}
		if _, err := os.Stat(logs.ContainerPath(k.logDir, "default", "crash", string(crashPod.UID), "c", 0)); !os.IsNotExist(err) {
			return false, fmt.Errorf("the first instance's log: %v", err)
		}
		return true, nil
	})

	for _, tc := range []struct{ pod, want string }{
		{"term-file", "all done"},
		{"term-custom", "custom path\n"},
		{"term-logs-ok", ""},
	} {
		k.waitPod(t, tc.pod, "terminated with its message", 60*time.Second, func(p *corev1.Pod) error {
			if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
				return fmt.Errorf("statuses %+v", p.Status.ContainerStatuses)
			}
			if got := p.Status.ContainerStatuses[0].State.Terminated.Message; got != tc.want {
				return fmt.Errorf("message %q, want %q", got, tc.want)
			}
			return nil
		})
	}
	k.waitPod(t, "term-logs", "terminated with the end of its log as message", 60*time.Second, func(p *corev1.Pod) error {
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
			return fmt.Errorf("statuses %+v", p.Status.ContainerStatuses)
		}
		msg := p.Status.ContainerStatuses[0].State.Terminated.Message
		lines := strings.Split(strings.TrimSuffix(msg, "\n"), "\n")
		if len(lines) != 80 || lines[0] != "line 20" || lines[79] != "line 99" {
			return fmt.Errorf("message has %d lines, %q ... %q; want the last 80, line 20 to line 99", len(lines), lines[0], lines[len(lines)-1])
		}
		return nil
	})

	if kubectlBin, err := exec.LookPath("kubectl"); err == nil {
		kc := kubectlRunner{bin: kubectlBin, kubeconfig: k.env.Kubeconfig, home: t.TempDir()}
		out := kc.ok(t, nil, "describe", "pod", "ok")
		for _, want := range []string{"Events:", "Pulled", "already present on machine", "Created", "Created container c", "Started", "Started container c"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl describe pod ok: no %q in\n%s", want, out)
			}
		}
	} else {
		t.Log("kubectl not in PATH: describe not checked")
	}

	grace := int64(5)
	if _, err := k.pods.Delete(ctx, "default", "ok", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	k.waitEvent(t, "ok", corev1.EventTypeNormal, "Killing", "Stopping container c", 30*time.Second)
	t.Logf("events of ok: %q", k.podEvents(t, "ok"))
}

// TestKubeletImageGC runs the image collector on the kubelet's containerd
// with thresholds that always collect: an image a container uses stays,
// the pause image stays, an unused image goes.
func TestKubeletImageGC(t *testing.T) {
	k := startTestKubelet(t, "kubelet-imagegc")
	ctx := context.Background()
	gc, err := k.server.Runtime.NewImageGC(containerruntime.ImageGCConfig{
		HighThreshold: 0, LowThreshold: 0, ImageFS: k.root, PinnedImages: []string{k.opts.PodInfraImage},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.pods.Create(ctx, "default", k.busyboxPod("user", "exec sleep 3600", corev1.RestartPolicyAlways)); err != nil {
		t.Fatal(err)
	}
	k.waitPod(t, "user", "Running", 60*time.Second, func(p *corev1.Pod) error {
		_, err := runningContainer(p)
		return err
	})
	// Nothing can go: the error says what was not freed.
	if removed, _ := gc.Collect(ctx); len(removed) > 0 {
		t.Fatalf("removed %q while every image is in use or pinned", removed)
	}
	grace := int64(0)
	if _, err := k.pods.Delete(ctx, "default", "user", metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pod's containers to go", 60*time.Second, func() (bool, error) {
		cs, err := k.server.Runtime.List(ctx, "")
		return err == nil && len(cs) == 0, fmt.Errorf("%d containers, %v", len(cs), err)
	})
	removed, _ := gc.Collect(ctx)
	if len(removed) != 1 || !strings.Contains(removed[0], "coxswain/busybox") {
		t.Fatalf("removed %q, want the busybox image only", removed)
	}
	cl := k.server.Runtime.Client()
	imgs, err := cl.ImageService().List(nsContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range imgs {
		names = append(names, img.Name)
	}
	if len(names) != 1 || !strings.Contains(names[0], "coxswain/pause") {
		t.Errorf("images left %q, want the pause image", names)
	}
}

package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd/namespaces"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/pkg/client"
)

// kubectlStatus is the STATUS column of `kubectl get pod`, which the
// apiserver's Table printer computes from the pod's status.
func (k *testKubelet) kubectlStatus(name string) (string, error) {
	out, err := exec.Command("kubectl", "--kubeconfig", k.env.Kubeconfig, "get", "pod", name, "--no-headers").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("kubectl get pod %s: %v: %s", name, err, out)
	}
	fields := strings.Fields(string(out))
	if len(fields) < 3 {
		return "", fmt.Errorf("kubectl get pod %s: %q", name, out)
	}
	return fields[2], nil
}

// waitKubectlStatus waits until `kubectl get pod` shows the status.
func (k *testKubelet) waitKubectlStatus(t *testing.T, name, want string, timeout time.Duration) {
	t.Helper()
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Logf("no kubectl: STATUS %s of %s not checked", want, name)
		return
	}
	waitFor(t, fmt.Sprintf("kubectl get pod %s: %s", name, want), timeout, func() (bool, error) {
		got, err := k.kubectlStatus(name)
		if err != nil {
			return false, err
		}
		return got == want, fmt.Errorf("STATUS %s", got)
	})
}

func statusNamed(statuses []corev1.ContainerStatus, name string) (*corev1.ContainerStatus, error) {
	for i := range statuses {
		if statuses[i].Name == name {
			return &statuses[i], nil
		}
	}
	return nil, fmt.Errorf("no status of container %s in %+v", name, statuses)
}

func containerID(s *corev1.ContainerStatus) string {
	return strings.TrimPrefix(s.ContainerID, "containerd://")
}

// runningID waits for the pod's container to run and returns its ID.
func (k *testKubelet) runningID(t *testing.T, pod, container string, timeout time.Duration) string {
	t.Helper()
	var id string
	k.waitPod(t, pod, container+" running", timeout, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.ContainerStatuses, container)
		if err != nil {
			return err
		}
		if s.State.Running == nil {
			return fmt.Errorf("phase %s, %s state %+v", p.Status.Phase, container, s.State)
		}
		id = containerID(s)
		return nil
	})
	return id
}

// emptyDirPath is where the kubelet keeps the pod's emptyDir volume.
func (k *testKubelet) emptyDirPath(p *corev1.Pod, volume string) string {
	return filepath.Join(k.root, "pods", string(p.UID), "volumes", "kubernetes.io~empty-dir", volume)
}

func busybox(name, script string) corev1.Container {
	return corev1.Container{Name: name, Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script}}
}

// TestKubeletPodLifecycle runs on real containerd: init containers in order
// (the second sees what the first wrote in an emptyDir, kubectl shows
// Init:0/2 while the first runs), an init container failing under
// restartPolicy Never (the pod fails, Init:Error) and under Always
// (restarted, Init:CrashLoopBackOff), a native sidecar; resources as cgroup
// limits and a container the OOM killer killed (lastState OOMKilled); the
// securityContext (runAsUser/runAsGroup/supplementalGroups seen by id in
// the container, a read-only root filesystem, a dropped CHOWN, no_new_privs,
// privileged, runAsNonRoot refused); and lifecycle hooks (postStart exec
// and httpGet, a failing postStart restarting its container, preStop exec
// before the SIGTERM, preStop httpGet and sleep, a failing preStop), with
// upstream's Events; and the pods' cgroups gone after their deletion.
func TestKubeletPodLifecycle(t *testing.T) {
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Skip("the lifecycle test reads the STATUS column of kubectl get pods")
	}
	k := startTestKubelet(t, "kubelet-lifecycle")
	t.Cleanup(func() {
		_ = k.server.Stop()
		unmountUnder(t, filepath.Join(k.root, "pods"))
	})
	ctx := context.Background()

	// An HTTP server on the node for the httpGet hooks.
	var hookMu sync.Mutex
	hookHits := map[string]string{} // path: user agent
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		hookHits[r.URL.Path] = r.UserAgent()
		hookMu.Unlock()
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(hookSrv.Close)
	hookPort, _ := strconv.Atoi(hookSrv.URL[strings.LastIndexByte(hookSrv.URL, ':')+1:])
	waitHook := func(path string) {
		t.Helper()
		waitFor(t, "hook request "+path, 30*time.Second, func() (bool, error) {
			hookMu.Lock()
			defer hookMu.Unlock()
			ua, ok := hookHits[path]
			if ok && !strings.HasPrefix(ua, "kube-lifecycle/") {
				t.Errorf("hook %s: User-Agent %q", path, ua)
			}
			return ok, fmt.Errorf("seen %v", hookHits)
		})
	}
	httpHook := func(path string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Host: "127.0.0.1", Port: intstr.FromInt(hookPort), Path: path}}
	}
	hostDir := t.TempDir()
	hostVol := corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}
	hostMount := corev1.VolumeMount{Name: "host", MountPath: "/host"}
	workVol := corev1.Volume{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	workMount := corev1.VolumeMount{Name: "work", MountPath: "/work"}

	// Init containers in order: the first waits for a go-ahead the test
	// writes into the emptyDir, then writes a file the second copies.
	initOrder := k.busyboxPod("init-order", "cat /work/second; sleep 3600", corev1.RestartPolicyAlways)
	initOrder.Spec.Volumes = []corev1.Volume{workVol}
	initOrder.Spec.InitContainers = []corev1.Container{
		busybox("first", "until [ -f /work/go ]; do sleep 0.1; done; echo one > /work/first"),
		busybox("second", "test -f /work/first && cp /work/first /work/second"),
	}
	for _, c := range [][]corev1.Container{initOrder.Spec.InitContainers, initOrder.Spec.Containers} {
		for i := range c {
			c[i].VolumeMounts = []corev1.VolumeMount{workMount}
		}
	}
	initNever := k.busyboxPod("init-never", "sleep 3600", corev1.RestartPolicyNever)
	initNever.Spec.InitContainers = []corev1.Container{busybox("setup", "echo failing; exit 2")}
	initCrash := k.busyboxPod("init-crash", "sleep 3600", corev1.RestartPolicyAlways)
	initCrash.Spec.InitContainers = []corev1.Container{busybox("setup", "exit 1")}
	always := corev1.ContainerRestartPolicyAlways
	sidecar := k.busyboxPod("sidecar", "until [ -f /work/from-sidecar ]; do sleep 0.1; done; echo done", corev1.RestartPolicyNever)
	sidecar.Spec.Volumes = []corev1.Volume{workVol}
	side := busybox("side", "touch /work/from-sidecar; exec sleep 3600")
	side.RestartPolicy = &always
	sidecar.Spec.InitContainers = []corev1.Container{side}
	sidecar.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{workMount}
	sidecar.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{workMount}

	// Resources: limits in the container's cgroups; an OOM kill.
	limited := k.busyboxPod("limited", "sleep 3600", corev1.RestartPolicyAlways)
	limited.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	// Requests equal to limits: QoS Guaranteed, its cgroup right under kubepods.
	guaranteed := k.busyboxPod("guaranteed", "sleep 3600", corev1.RestartPolicyAlways)
	guaranteed.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
	}
	oom := k.busyboxPod("oom", "echo eating; tail /dev/zero", corev1.RestartPolicyAlways)
	oom.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}

	// Security contexts.
	i64 := func(v int64) *int64 { return &v }
	yes, no := true, false
	secure := k.busyboxPod("secure", "sleep 3600", corev1.RestartPolicyAlways)
	secure.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(3000), SupplementalGroups: []int64{4000}}
	secure.Spec.Volumes = []corev1.Volume{workVol}
	secure.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{workMount}
	secure.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: &yes, AllowPrivilegeEscalation: &no}
	caps := k.busyboxPod("caps", "sleep 3600", corev1.RestartPolicyAlways)
	caps.Spec.Containers = append(caps.Spec.Containers, busybox("nochown", "sleep 3600"), busybox("privileged", "sleep 3600"))
	caps.Spec.Containers[1].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"CHOWN"}}}
	caps.Spec.Containers[2].SecurityContext = &corev1.SecurityContext{Privileged: &yes}
	nonRoot := k.busyboxPod("non-root", "sleep 3600", corev1.RestartPolicyAlways)
	nonRoot.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: &yes}

	// Hooks.
	hooks := k.busyboxPod("hooks", "until [ -f /work/poststart ]; do sleep 0.1; done; echo saw postStart; sleep 3600", corev1.RestartPolicyAlways)
	hooks.Spec.Volumes = []corev1.Volume{workVol}
	hooks.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{workMount}
	hooks.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo from-poststart > /work/poststart"}}},
	}
	hooks.Spec.Containers = append(hooks.Spec.Containers, busybox("web", "sleep 3600"))
	hooks.Spec.Containers[1].Lifecycle = &corev1.Lifecycle{PostStart: httpHook("/poststart")}
	badPostStart := k.busyboxPod("bad-poststart", "sleep 3600", corev1.RestartPolicyAlways)
	badPostStart.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 7"}}},
	}
	// preStop: the hook writes a file, the container's SIGTERM handler
	// records whether it was there; with httpGet and sleep hooks beside.
	grace := int64(20)
	stopping := k.busyboxPod("stopping", `trap 'if [ -f /host/prestop ]; then echo after-prestop > /host/term; else echo before-prestop > /host/term; fi; exit 0' TERM; while true; do sleep 0.1; done`, corev1.RestartPolicyAlways)
	stopping.Spec.TerminationGracePeriodSeconds = &grace
	stopping.Spec.Volumes = []corev1.Volume{hostVol}
	stopping.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{hostMount}
	stopping.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{
		PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo ran > /host/prestop"}}},
	}
	const stoppable = `trap 'exit 0' TERM; while true; do sleep 0.1; done`
	stopping.Spec.Containers = append(stopping.Spec.Containers,
		busybox("http", stoppable),
		busybox("sleepy", `trap 'date +%s > /host/sleepy-term; exit 0' TERM; while true; do sleep 0.1; done`),
		busybox("failing", stoppable),
	)
	stopping.Spec.Containers[1].Lifecycle = &corev1.Lifecycle{PreStop: httpHook("/prestop")}
	stopping.Spec.Containers[2].VolumeMounts = []corev1.VolumeMount{hostMount}
	stopping.Spec.Containers[2].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: 2}}}
	stopping.Spec.Containers[3].Lifecycle = &corev1.Lifecycle{
		PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "exit 3"}}},
	}

	created := map[string]*corev1.Pod{}
	for _, p := range []*corev1.Pod{initOrder, initNever, initCrash, sidecar, limited, guaranteed, oom, secure, caps, nonRoot, hooks, badPostStart, stopping} {
		c, err := k.pods.Create(ctx, "default", p)
		if err != nil {
			t.Fatal(err)
		}
		created[p.Name] = c
	}

	// --- Init containers.
	k.waitPod(t, "init-order", "running its first init container", 60*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.InitContainerStatuses, "first")
		if err != nil {
			return err
		}
		if s.State.Running == nil || p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("phase %s, first %+v", p.Status.Phase, s.State)
		}
		return nil
	})
	k.waitKubectlStatus(t, "init-order", "Init:0/2", 10*time.Second)
	p, err := k.pods.Get(ctx, "default", "init-order")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := statusNamed(p.Status.InitContainerStatuses, "second"); s == nil || s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("second init container before the first completed: %+v", s)
	}
	if s, _ := statusNamed(p.Status.ContainerStatuses, "c"); s == nil || s.State.Waiting == nil || s.State.Waiting.Reason != "PodInitializing" {
		t.Errorf("main container while initializing: %+v", s)
	}
	if err := os.WriteFile(filepath.Join(k.emptyDirPath(created["init-order"], "work"), "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mainID := k.runningID(t, "init-order", "c", 60*time.Second)
	k.waitExec(t, mainID, "the main container sees the second init container's copy", 10*time.Second, "one\n", "cat", "/work/second")
	p, _ = k.pods.Get(ctx, "default", "init-order")
	for _, name := range []string{"first", "second"} {
		s, err := statusNamed(p.Status.InitContainerStatuses, name)
		if err != nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.State.Terminated.Reason != "Completed" || !s.Ready || s.RestartCount != 0 {
			t.Errorf("init container %s after initialization: %+v, %v", name, s, err)
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			t.Errorf("init-order condition %s = %s (%s)", c.Type, c.Status, c.Message)
		}
	}
	k.waitKubectlStatus(t, "init-order", "Running", 10*time.Second)

	k.waitPod(t, "init-never", "Failed", 60*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		s, err := statusNamed(p.Status.InitContainerStatuses, "setup")
		if err != nil {
			return err
		}
		if tm := s.State.Terminated; tm == nil || tm.ExitCode != 2 || tm.Reason != "Error" || s.RestartCount != 0 {
			return fmt.Errorf("setup %+v restarts %d", s.State, s.RestartCount)
		}
		if c, _ := statusNamed(p.Status.ContainerStatuses, "c"); c == nil || c.State.Waiting == nil || c.ContainerID != "" {
			return fmt.Errorf("main container ran: %+v", c)
		}
		return nil
	})
	k.waitKubectlStatus(t, "init-never", "Init:Error", 10*time.Second)
	waitFor(t, "the failed pod's containers removed", 30*time.Second, func() (bool, error) {
		left, err := k.server.Runtime.List(ctx, string(created["init-never"].UID))
		return err == nil && len(left) == 0, fmt.Errorf("left %v, %v", left, err)
	})

	k.waitPod(t, "init-crash", "restarting its init container", 60*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.InitContainerStatuses, "setup")
		if err != nil {
			return err
		}
		if s.RestartCount < 1 || s.State.Waiting == nil || s.State.Waiting.Reason != "CrashLoopBackOff" || s.LastTerminationState.Terminated == nil || p.Status.Phase != corev1.PodPending {
			return fmt.Errorf("phase %s, setup %+v", p.Status.Phase, s)
		}
		return nil
	})
	k.waitKubectlStatus(t, "init-crash", "Init:CrashLoopBackOff", 10*time.Second)

	k.waitPod(t, "sidecar", "Succeeded with its sidecar stopped", 60*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodSucceeded {
			return fmt.Errorf("phase %s, statuses %+v %+v", p.Status.Phase, p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
		}
		s, err := statusNamed(p.Status.InitContainerStatuses, "side")
		if err != nil {
			return err
		}
		if s.State.Terminated == nil || s.RestartCount != 0 {
			return fmt.Errorf("sidecar %+v", s)
		}
		return nil
	})

	// --- Resources.
	limitedID := k.runningID(t, "limited", "c", 60*time.Second)
	checkCgroups(t, k, limitedID)
	guaranteedID := k.runningID(t, "guaranteed", "c", 60*time.Second)
	if gp, err := k.pods.Get(ctx, "default", "guaranteed"); err != nil {
		t.Fatal(err)
	} else if c, err := k.server.Runtime.Client().LoadContainer(nsContext(ctx), guaranteedID); err != nil {
		t.Fatal(err)
	} else if spec, err := c.Spec(nsContext(ctx)); err != nil {
		t.Fatal(err)
	} else if want := "/kubepods/pod" + string(gp.UID) + "/" + guaranteedID; spec.Linux.CgroupsPath != want || gp.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("guaranteed pod: cgroupsPath %q, QoS %q; want %q, Guaranteed", spec.Linux.CgroupsPath, gp.Status.QOSClass, want)
	}
	k.waitPod(t, "oom", "OOM-killed and restarted", 60*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.ContainerStatuses, "c")
		if err != nil {
			return err
		}
		if lt := s.LastTerminationState.Terminated; lt == nil || lt.Reason != "OOMKilled" || s.RestartCount < 1 {
			return fmt.Errorf("restarts %d, lastState %+v, state %+v", s.RestartCount, s.LastTerminationState, s.State)
		}
		return nil
	})

	// --- Security.
	secureID := k.runningID(t, "secure", "c", 60*time.Second)
	for cmd, want := range map[string]string{"id -u": "1000\n", "id -g": "3000\n", "grep NoNewPrivs /proc/self/status": "NoNewPrivs:\t1\n"} {
		k.waitExec(t, secureID, cmd, 10*time.Second, want, "sh", "-c", cmd)
	}
	if out, _ := k.execOut(t, secureID, "id", "-G"); !strings.Contains(" "+out, " 4000") || !strings.Contains(" "+out, " 3000") {
		t.Errorf("id -G = %q, want the runAsGroup 3000 and the supplemental group 4000", out)
	}
	if out, code := k.execOut(t, secureID, "sh", "-c", "echo x > /written"); code == 0 {
		t.Errorf("writing to the read-only root filesystem succeeded: %q", out)
	} else if !strings.Contains(out, "Read-only file system") {
		t.Errorf("write to the read-only root: %q, want EROFS", out)
	}
	if out, code := k.execOut(t, secureID, "sh", "-c", "echo x > /work/written && cat /work/written"); code != 0 || out != "x\n" {
		t.Errorf("write to the emptyDir as user 1000: exit %d, %q", code, out)
	}
	p, _ = k.pods.Get(ctx, "default", "caps")
	capsIDs := map[string]string{}
	k.waitPod(t, "caps", "Running", 60*time.Second, func(p *corev1.Pod) error {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running == nil {
				return fmt.Errorf("%s: %+v", s.Name, s.State)
			}
			capsIDs[s.Name] = containerID(&s)
		}
		return nil
	})
	chown := "touch /tmp/f && chown 1000 /tmp/f && echo chowned"
	if out, code := k.execOut(t, capsIDs["c"], "sh", "-c", chown); code != 0 || out != "chowned\n" {
		t.Errorf("chown with the default capabilities: exit %d, %q", code, out)
	}
	if out, code := k.execOut(t, capsIDs["nochown"], "sh", "-c", chown); code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("chown without CAP_CHOWN: exit %d, %q; want EPERM", code, out)
	}
	const capSysAdmin = 21
	for name, want := range map[string]bool{"c": false, "privileged": true} {
		out, _ := k.execOut(t, capsIDs[name], "grep", "CapEff", "/proc/self/status")
		f := strings.Fields(out)
		eff, err := strconv.ParseUint(f[len(f)-1], 16, 64)
		if err != nil || (eff&(1<<capSysAdmin) != 0) != want {
			t.Errorf("%s: %q: CAP_SYS_ADMIN %v, want %v (%v)", name, out, eff&(1<<capSysAdmin) != 0, want, err)
		}
		if out, _ := k.execOut(t, capsIDs[name], "grep", "NoNewPrivs", "/proc/self/status"); out != "NoNewPrivs:\t0\n" {
			t.Errorf("%s: %q, want no_new_privs off by default", name, out)
		}
	}
	k.waitPod(t, "non-root", "refused", 60*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.ContainerStatuses, "c")
		if err != nil {
			return err
		}
		want := fmt.Sprintf(`container has runAsNonRoot and image will run as root (pod: "non-root_default(%s)", container: c)`, p.UID)
		if w := s.State.Waiting; w == nil || w.Reason != "CreateContainerConfigError" || w.Message != want {
			return fmt.Errorf("state %+v", s.State)
		}
		return nil
	})
	k.waitKubectlStatus(t, "non-root", "CreateContainerConfigError", 10*time.Second)

	// --- Hooks.
	hooksID := k.runningID(t, "hooks", "c", 60*time.Second)
	k.waitExec(t, hooksID, "the postStart hook's file", 10*time.Second, "from-poststart\n", "cat", "/work/poststart")
	waitHook("/poststart")
	k.waitPod(t, "bad-poststart", "restarted after its postStart hook failed", 60*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.ContainerStatuses, "c")
		if err != nil {
			return err
		}
		if s.RestartCount < 1 {
			return fmt.Errorf("restarts %d, state %+v", s.RestartCount, s.State)
		}
		return nil
	})
	k.waitPodEvent(t, "bad-poststart", "spec.containers{c}", corev1.EventTypeWarning, "FailedPostStartHook", "PostStartHook failed", 10*time.Second)

	k.waitPod(t, "stopping", "Running", 60*time.Second, func(p *corev1.Pod) error {
		for _, s := range p.Status.ContainerStatuses {
			if s.State.Running == nil {
				return fmt.Errorf("%s: %+v", s.Name, s.State)
			}
		}
		return nil
	})
	deleted := time.Now()
	if _, err := k.pods.Delete(ctx, "default", "stopping", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stopping gone", 60*time.Second, func() (bool, error) {
		_, err := k.pods.Get(ctx, "default", "stopping")
		return apierrors.IsNotFound(err), err
	})
	if b, err := os.ReadFile(filepath.Join(hostDir, "term")); err != nil || string(b) != "after-prestop\n" {
		t.Errorf("the container's SIGTERM handler found: %q, %v; want the preStop hook to have run before", b, err)
	}
	waitHook("/prestop")
	if b, err := os.ReadFile(filepath.Join(hostDir, "sleepy-term")); err != nil {
		t.Errorf("the sleepy container got no SIGTERM: %v", err)
	} else if at, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil || time.Unix(at+1, 0).Before(deleted.Add(2*time.Second)) {
		t.Errorf("SIGTERM at %s, deletion at %s: want the 2 s preStop sleep between", time.Unix(at, 0), deleted)
	}
	k.waitPodEvent(t, "stopping", "spec.containers{failing}", corev1.EventTypeWarning, "FailedPreStopHook", "PreStopHook failed", 10*time.Second)

	// --- Cleanup: the pods' cgroups go with them.
	for _, name := range []string{"limited", "guaranteed", "oom", "init-order", "caps"} {
		if _, err := k.pods.Delete(ctx, "default", name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"limited", "oom", "init-order", "caps", "stopping"} {
		k.wantPodGone(t, created[name].UID)
	}
	// Finished pods keep no cgroup either.
	for _, name := range []string{"limited", "oom", "init-order", "caps", "stopping", "init-never", "sidecar"} {
		waitFor(t, "the cgroups of "+name+" gone", 20*time.Second, func() (bool, error) {
			left := podCgroupDirs(created[name].UID)
			return len(left) == 0, fmt.Errorf("left %v", left)
		})
	}
}

// checkCgroups checks the cgroup limits of the "limited" pod's container:
// requests.cpu 250m, limits.cpu 500m and memory 64Mi, in the pod's
// Burstable cgroup.
func checkCgroups(t *testing.T, k *testKubelet, id string) {
	t.Helper()
	ctx := context.Background()
	c, err := k.server.Runtime.Client().LoadContainer(nsContext(ctx), id)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := c.Spec(nsContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	p, err := k.pods.Get(ctx, "default", "limited")
	if err != nil {
		t.Fatal(err)
	}
	wantPath := "/kubepods/burstable/pod" + string(p.UID) + "/" + id
	if spec.Linux.CgroupsPath != wantPath {
		t.Errorf("cgroupsPath = %q, want %q", spec.Linux.CgroupsPath, wantPath)
	}
	read := func(parts ...string) string {
		b, err := os.ReadFile(filepath.Join(append([]string{"/sys/fs/cgroup"}, parts...)...))
		if err != nil {
			t.Errorf("read cgroup file: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		// cgroup v2: runc turns shares into a weight.
		for file, want := range map[string]string{"cpu.max": "50000 100000", "memory.max": strconv.Itoa(64 << 20)} {
			if got := read(wantPath, file); got != want {
				t.Errorf("%s = %q, want %q", file, got, want)
			}
		}
		return
	}
	for _, tc := range []struct{ ctrl, file, want string }{
		{"cpu", "cpu.shares", "256"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
	} {
		if got := read(tc.ctrl, wantPath, tc.file); got != tc.want {
			t.Errorf("%s/%s = %q, want %q", tc.ctrl, tc.file, got, tc.want)
		}
	}
}

// podCgroupDirs are the cgroup directories of pod uid left on the node
// (cgroup v1 hierarchies, or the v2 tree).
func podCgroupDirs(uid types.UID) []string {
	var left []string
	for _, qos := range []string{"", "burstable", "besteffort"} {
		for _, pattern := range []string{
			filepath.Join("/sys/fs/cgroup", "*", "kubepods", qos, "pod"+string(uid)),
			filepath.Join("/sys/fs/cgroup", "kubepods", qos, "pod"+string(uid)),
		} {
			m, _ := filepath.Glob(pattern)
			left = append(left, m...)
		}
	}
	return left
}

func nsContext(ctx context.Context) context.Context {
	return namespaces.WithNamespace(ctx, containerruntime.Namespace)
}

// startKubeletBinary builds the kubelet and runs it with the test
// kubelet's options, as a process of its own that the test can kill -9.
func (k *testKubelet) startKubeletBinary(t *testing.T) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubelet")
	if b, err := exec.Command("go", "build", "-o", bin, "../cmd/kubelet").CombinedOutput(); err != nil {
		t.Fatalf("build kubelet: %v\n%s", err, b)
	}
	o := k.opts
	args := []string{
		"--kubeconfig", o.Kubeconfig, "--hostname-override", o.HostnameOverride, "--node-ip", o.NodeIP,
		"--containerd-address", o.ContainerdAddress, "--root-dir", o.RootDir, "--pod-log-dir", o.PodLogDir,
		"--cni-conf-dir", o.CNIConfDir, "--cni-bridge", o.CNIBridge, "--image-airgap-dir", o.ImageAirgapDir,
		"--healthz-port", "0", "--address", o.Address, "--port", strconv.Itoa(o.Port),
	}
	logPath := filepath.Join(dir, "kubelet.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			if len(lines) > 60 {
				lines = lines[len(lines)-60:]
			}
			t.Logf("kubelet binary log tail:\n%s", strings.Join(lines, "\n"))
		}
	})
	k.binExited = exited
	return cmd
}

// ticks are the numbers of the "tick N" lines of a container's log.
func ticks(path string) []int {
	b, _ := os.ReadFile(path)
	var out []int
	for _, line := range strings.Split(string(b), "\n") {
		// <time> stdout F tick N
		f := strings.Fields(line)
		if len(f) == 5 && f[1] == "stdout" && f[3] == "tick" {
			if n, err := strconv.Atoi(f[4]); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// TestKubeletAdoptsContainersAfterKill runs the kubelet binary, kills it
// with SIGKILL while its pods run, and starts a kubelet again: it adopts
// the running containers (same IDs, restart counts unchanged, nothing
// restarted, init containers not run again), logs their output on (what
// they wrote meanwhile included, no line lost), reports a container that
// exited while no kubelet ran with its exit code, watches the adopted
// containers' exits (one killed is restarted as its policy says), removes
// a pod deleted meanwhile, and tears an adopted pod down fully on delete.
func TestKubeletAdoptsContainersAfterKill(t *testing.T) {
	k := startTestKubelet(t, "kubelet-adopt")
	t.Cleanup(func() {
		_ = k.server.Stop()
		unmountUnder(t, filepath.Join(k.root, "pods"))
	})
	// The in-process kubelet only registered the node: the binary runs
	// the pods.
	if err := k.server.Stop(); err != nil {
		t.Fatal(err)
	}
	bin := k.startKubeletBinary(t)
	ctx := context.Background()

	hostDir := t.TempDir()
	hostVol := corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}
	hostMount := corev1.VolumeMount{Name: "host", MountPath: "/host"}
	ticker := k.busyboxPod("ticker", `i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done`, corev1.RestartPolicyAlways)
	inited := k.busyboxPod("inited", "sleep 3600", corev1.RestartPolicyAlways)
	inited.Spec.Volumes = []corev1.Volume{hostVol}
	inited.Spec.InitContainers = []corev1.Container{busybox("setup", "echo ran >> /host/init-runs")}
	inited.Spec.InitContainers[0].VolumeMounts = []corev1.VolumeMount{hostMount}
	exiter := k.busyboxPod("exiter", "until [ -f /host/exit-now ]; do sleep 0.1; done; exit 3", corev1.RestartPolicyNever)
	exiter.Spec.Volumes = []corev1.Volume{hostVol}
	exiter.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{hostMount}
	doomed := k.busyboxPod("doomed", "sleep 3600", corev1.RestartPolicyAlways)
	created := map[string]*corev1.Pod{}
	for _, p := range []*corev1.Pod{ticker, inited, exiter, doomed} {
		c, err := k.pods.Create(ctx, "default", p)
		if err != nil {
			t.Fatal(err)
		}
		created[p.Name] = c
	}
	ids := map[string]string{}
	for _, name := range []string{"ticker", "inited", "exiter", "doomed"} {
		ids[name] = k.runningID(t, name, "c", 90*time.Second)
	}
	logPath := filepath.Join(k.logDir, fmt.Sprintf("default_ticker_%s", created["ticker"].UID), "c", "0.log")
	waitFor(t, "ticks in the log", 10*time.Second, func() (bool, error) {
		n := len(ticks(logPath))
		return n >= 5, fmt.Errorf("%d ticks", n)
	})

	// kill -9, then what happens while no kubelet runs: a container
	// exits, a pod is deleted, the ticker ticks on.
	if err := bin.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-k.binExited
	atKill := len(ticks(logPath))
	rt, err := containerruntime.New(ctx, containerruntime.Config{Address: k.opts.ContainerdAddress})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := os.WriteFile(filepath.Join(hostDir, "exit-now"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the exiter's container to exit while no kubelet runs", 20*time.Second, func() (bool, error) {
		cs, err := rt.PodContainers(ctx, string(created["exiter"].UID))
		for _, c := range cs {
			if c.ID == ids["exiter"] {
				return c.HasTask && !c.Running, fmt.Errorf("task: %v, running %v", c.HasTask, c.Running)
			}
		}
		return false, fmt.Errorf("containers %+v, %v", cs, err)
	})
	if _, err := k.pods.Delete(ctx, "default", "doomed", metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
		t.Fatal(err)
	}
	if got := len(ticks(logPath)); got > atKill {
		t.Errorf("%d ticks logged after the kubelet died (%d before): who logs?", got, atKill)
	}

	k.restart(t)

	k.waitPod(t, "exiter", "Failed with the exit it had while no kubelet ran", 30*time.Second, func(p *corev1.Pod) error {
		s, err := statusNamed(p.Status.ContainerStatuses, "c")
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodFailed || s.State.Terminated == nil || s.State.Terminated.ExitCode != 3 || s.State.Terminated.Reason != "Error" || containerID(s) != ids["exiter"] {
			return fmt.Errorf("phase %s, state %+v, id %s", p.Status.Phase, s.State, s.ContainerID)
		}
		return nil
	})
	k.wantPodGone(t, created["doomed"].UID)
	// The ticker's output goes on in the same log, nothing lost.
	waitFor(t, "ticks logged again", 20*time.Second, func() (bool, error) {
		n := len(ticks(logPath))
		return n > atKill+20, fmt.Errorf("%d ticks, %d at the kill", n, atKill)
	})
	for i, n := range ticks(logPath) {
		if n != i {
			t.Fatalf("tick %d logged as line %d: a line lost or repeated across the restart", n, i)
		}
	}
	for _, name := range []string{"ticker", "inited"} {
		p, err := k.pods.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := runningContainer(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if containerID(s) != ids[name] || s.RestartCount != 0 || !s.Ready {
			t.Errorf("%s after the restart: id %s (was %s), restarts %d, ready %v; want it adopted", name, containerID(s), ids[name], s.RestartCount, s.Ready)
		}
		left, err := rt.PodContainers(ctx, string(p.UID))
		want := 2 + len(p.Spec.InitContainers)
		if err != nil || len(left) != want {
			t.Errorf("%s: containers in containerd %+v, %v; want the sandbox and %d", name, left, err, want-1)
		}
	}
	p, _ := k.pods.Get(ctx, "default", "inited")
	if s, err := statusNamed(p.Status.InitContainerStatuses, "setup"); err != nil || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 || s.RestartCount != 0 {
		t.Errorf("init container after the restart: %+v, %v", s, err)
	}
	if b, err := os.ReadFile(filepath.Join(hostDir, "init-runs")); err != nil || string(b) != "ran\n" {
		t.Errorf("init container runs: %q, %v; want one", b, err)
	}

	// The adopted container's exit is seen: killed, it is restarted.
	c, err := rt.Client().LoadContainer(nsContext(ctx), ids["ticker"])
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Task(nsContext(ctx), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Kill(nsContext(ctx), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	k.waitPod(t, "ticker", "restarted after its adopted container was killed", 30*time.Second, func(p *corev1.Pod) error {
		s, err := runningContainer(p)
		if err != nil {
			return err
		}
		if s.RestartCount != 1 || containerID(s) == ids["ticker"] || s.LastTerminationState.Terminated == nil || s.LastTerminationState.Terminated.ExitCode != 137 {
			return fmt.Errorf("restarts %d, id %s, lastState %+v", s.RestartCount, s.ContainerID, s.LastTerminationState)
		}
		return nil
	})
	// And an adopted pod is torn down fully.
	if _, err := k.pods.Delete(ctx, "default", "inited", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	k.wantPodGone(t, created["inited"].UID)
	if left := podCgroupDirs(created["inited"].UID); len(left) > 0 {
		t.Errorf("cgroups of the deleted adopted pod: %v", left)
	}
}

// registryPassword's bcrypt hash, for the test registry's htpasswd file.
const (
	registryUser     = "puller"
	registryPassword = "pull-s3cret"
	registryHtpasswd = registryUser + ":$2a$10$J/IYPi2CEEGbWguAI/J1weiCgCYLIvR11/YFSp.ty0UIEeQMkRaZK\n"
)

// startRegistry runs Debian's docker-registry on a free port of 127.0.0.1
// with basic authentication (htpasswd) and returns host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("the image pull secrets test needs docker-registry (Debian's docker-registry package)")
	}
	dir := t.TempDir()
	host := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: coxswain-test
    path: %s
`, filepath.Join(dir, "data"), host, filepath.Join(dir, "htpasswd"))
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(registryHtpasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Logf("registry log:\n%s", b)
		}
	})
	waitFor(t, "the registry to answer", 20*time.Second, func() (bool, error) {
		res, err := http.Get("http://" + host + "/v2/")
		if err != nil {
			return false, err
		}
		res.Body.Close()
		return res.StatusCode == http.StatusUnauthorized, fmt.Errorf("GET /v2/: %s", res.Status)
	})
	return host
}

// TestKubeletImagePullSecrets pulls from a registry that asks for basic
// authentication: with the pod's kubernetes.io/dockerconfigjson secret the
// image is pulled and runs; without it, or with a wrong password, the pull
// fails with ErrImagePull and the registry's 401.
func TestKubeletImagePullSecrets(t *testing.T) {
	k := startTestKubelet(t, "kubelet-pull-secrets")
	registry := startRegistry(t)
	// Plain HTTP to the test registry.
	if err := k.server.Stop(); err != nil {
		t.Fatal(err)
	}
	k.opts.InsecureRegistries = []string{registry}
	k.restart(t)
	ctx := context.Background()

	img, err := images.Busybox("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: registryUser, Password: registryPassword})
	for _, tag := range []string{"v1", "v2", "v3"} {
		ref, err := name.ParseReference(registry+"/private/busybox:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img, auth); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
	}
	dockerConfig := func(password string) []byte {
		basic := base64.StdEncoding.EncodeToString([]byte(registryUser + ":" + password))
		return []byte(fmt.Sprintf(`{"auths": {%q: {"username": %q, "password": %q, "auth": %q}}}`, registry, registryUser, password, basic))
	}
	secrets := client.For[*corev1.Secret](k.env.Client)
	for secretName, password := range map[string]string{"regcred": registryPassword, "badcred": "wrong"} {
		if _, err := secrets.Create(ctx, "default", &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: secretName},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: dockerConfig(password)},
		}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(podName, tag string, secrets ...string) *corev1.Pod {
		p := k.busyboxPod(podName, "echo pulled; sleep 3600", corev1.RestartPolicyAlways)
		p.Spec.Containers[0].Image = registry + "/private/busybox:" + tag
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		return p
	}
	// A missing secret is skipped (with an Event): the next one works.
	for _, p := range []*corev1.Pod{mk("private", "v1", "missing", "regcred"), mk("anonymous", "v2"), mk("wrong", "v3", "badcred")} {
		if _, err := k.pods.Create(ctx, "default", p); err != nil {
			t.Fatal(err)
		}
	}
	id := k.runningID(t, "private", "c", 90*time.Second)
	k.waitExec(t, id, "the pulled image runs", 10*time.Second, "ok\n", "echo", "ok")
	k.waitPodEvent(t, "private", "", corev1.EventTypeWarning, "FailedToRetrieveImagePullSecret", "Unable to retrieve some image pull secrets (missing)", 10*time.Second)
	for _, podName := range []string{"anonymous", "wrong"} {
		k.waitPod(t, podName, "refused by the registry", 60*time.Second, func(p *corev1.Pod) error {
			s, err := statusNamed(p.Status.ContainerStatuses, "c")
			if err != nil {
				return err
			}
			w := s.State.Waiting
			if w == nil || (w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff") || !strings.Contains(w.Message, "401") {
				return fmt.Errorf("state %+v", s.State)
			}
			return nil
		})
	}
}

package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

// testPodCIDR is the pod range of the test running now: the first of
// 10.213.77.0/24 … 10.213.80.0/24 that no interface of the machine holds and
// no other test process has claimed (an flock on a file in the temp dir,
// held until the test ends), so that kubelet tests of several checkouts can
// run side by side.
var testPodCIDR string

// claimPodCIDR sets testPodCIDR, or skips the test when every range is taken.
func claimPodCIDR(t *testing.T) {
	t.Helper()
	addrs, _ := net.InterfaceAddrs()
	var taken []string
	for third := 77; third <= 80; third++ {
		c := fmt.Sprintf("10.213.%d.0/24", third)
		_, cidr, _ := net.ParseCIDR(c)
		inUse := false
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && cidr.Contains(ipn.IP) {
				taken = append(taken, fmt.Sprintf("%s (%s)", c, ipn))
				inUse = true
			}
		}
		if inUse {
			continue
		}
		f, err := os.OpenFile(filepath.Join(os.TempDir(), fmt.Sprintf("coxswain-kubelet-test-10.213.%d.lock", third)), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatalf("claim %s: %v", c, err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			_ = f.Close()
			taken = append(taken, c+" (claimed by another test process)")
			continue
		}
		testPodCIDR = c
		t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
		return
	}
	t.Skipf("every test pod range is in use on this machine: %s", strings.Join(taken, ", "))
}

func requireNodeEnv(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kubelet integration test needs root (network namespaces, containerd, CNI)")
	}
	for _, p := range []string{"/usr/bin/containerd", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/bin/busybox"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("kubelet integration test needs %s: %v", p, err)
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("kubelet integration test needs runc in PATH")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("kubelet integration test needs the go tool to build the pause binary")
	}
	claimPodCIDR(t)
}

// startContainerd runs a private containerd under dir and stops it (by pid)
// at cleanup, after removing every container of the kubelet's namespace.
func startContainerd(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "containerd.sock")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, sock+".ttrpc", filepath.Join(dir, "opt"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// Remove what the kubelet left, so the shims exit with their tasks.
		if c, err := containerd.New(sock, containerd.WithTimeout(5*time.Second)); err == nil {
			ctx := namespaces.WithNamespace(context.Background(), containerruntime.Namespace)
			cs, _ := c.Containers(ctx)
			podCgroups := map[string]bool{}
			for _, ct := range cs {
				if spec, err := ct.Spec(ctx); err == nil && spec.Linux != nil && strings.Contains(spec.Linux.CgroupsPath, "/kubepods/") {
					podCgroups[filepath.Dir(spec.Linux.CgroupsPath)] = true
				}
				if task, err := ct.Task(ctx, nil); err == nil {
					_, _ = task.Delete(ctx, containerd.WithProcessKill)
				}
				_ = ct.Delete(ctx, containerd.WithSnapshotCleanup)
			}
			_ = c.Close()
			// The pods' cgroups the kubelet had no time to remove.
			for p := range podCgroups {
				if err := containerruntime.RemoveCgroup(p); err != nil {
					t.Logf("remove pod cgroup %s: %v", p, err)
				}
			}
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		unmountUnder(t, dir)
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(dir, "containerd.log")); err == nil {
				lines := strings.Split(string(b), "\n")
				if len(lines) > 40 {
					lines = lines[len(lines)-40:]
				}
				t.Logf("containerd log tail:\n%s", strings.Join(lines, "\n"))
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if c, err := containerd.New(sock, containerd.WithTimeout(time.Second)); err == nil {
			ok, _ := c.IsServing(context.Background())
			_ = c.Close()
			if ok {
				return sock
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd exited:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("containerd did not start")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountUnder lazily unmounts every mount at or below dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	mps, err := mountinfo.Under(dir)
	if err != nil {
		t.Logf("mounts under %s: %v", dir, err)
	}
	for _, mp := range mps {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil {
			t.Logf("unmount %s: %v", mp, err)
		}
	}
}

func buildImages(t *testing.T, dir string) string {
	t.Helper()
	pause := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-o", pause, "../cmd/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build pause: %v\n%s", err, b)
	}
	out := filepath.Join(dir, "airgap")
	if _, err := images.Build(images.Options{OutDir: out, PauseBinary: pause, BusyboxBinary: "/bin/busybox"}); err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s (last error: %v)", what, lastErr)
}

// testKubelet is a kubelet running in-process against a private
// containerd and an in-process apiserver, with its node registered.
type testKubelet struct {
	env      *harness.Env
	server   *Server
	nodeName string
	root     string // the kubelet's root dir
	logDir   string // the pods' log dir
	bridge   string // the CNI bridge
	pods     *client.Typed[*corev1.Pod]
	opts     *Options // the kubelet's options, to start it again
	// binExited is closed when the kubelet binary the test ran exited.
	binExited chan struct{}
}

// testNode is what a kubelet test's node needs before the kubelet: a
// temporary folder, the name of its CNI bridge, the air-gap images and a
// private containerd.
type testNode struct {
	dir, bridge, airgap, sock string
}

// setUpTestNode checks the machine (requireNodeEnv, which claims
// testPodCIDR), makes the folder (prefix names it), builds the images and
// starts containerd; cleanup removes the bridge, the mounts under the
// folder and the folder, on failure too.
func setUpTestNode(t *testing.T, prefix string) testNode {
	t.Helper()
	requireNodeEnv(t)
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	// Last of the cleanups: whatever a stopped kubelet left mounted (the
	// volumes of pods still running when a test ends) goes first, or the
	// folder could not be removed and the mounts would stay.
	t.Cleanup(func() {
		unmountUnder(t, dir)
		_ = os.RemoveAll(dir)
	})
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	bridge := "cxst" + hex.EncodeToString(rnd[:])

	airgap := buildImages(t, dir)
	sock := startContainerd(t, filepath.Join(dir, "containerd"))
	t.Cleanup(func() {
		if _, err := net.InterfaceByName(bridge); err == nil {
			if b, err := exec.Command("ip", "link", "del", bridge).CombinedOutput(); err != nil {
				t.Errorf("delete bridge %s: %v %s", bridge, err, b)
			}
		}
	})
	return testNode{dir: dir, bridge: bridge, airgap: airgap, sock: sock}
}

// startTestKubelet starts containerd, the apiserver and the kubelet for
// node nodeName; cleanup stops them and removes what they made (netns
// mounts, the bridge, containerd's state), on failure too.
func startTestKubelet(t *testing.T, nodeName string) *testKubelet {
	t.Helper()
	n := setUpTestNode(t, "cxs-kubelet-")
	dir, bridge, airgap, sock := n.dir, n.bridge, n.airgap, n.sock
	env := harness.Start(t)
	ctx := context.Background()
	if _, err := client.For[*corev1.Node](env.Client).Create(ctx, "", &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Spec:       corev1.NodeSpec{PodCIDR: testPodCIDR, PodCIDRs: []string{testPodCIDR}},
	}); err != nil {
		t.Fatal(err)
	}

	root := filepath.Join(dir, "kubelet")
	logDir := filepath.Join(dir, "pods-logs")
	o := NewOptions()
	o.Kubeconfig = env.Kubeconfig
	o.HostnameOverride = nodeName
	o.NodeIP = "127.0.0.1"
	o.ContainerdAddress = sock
	o.RootDir = root
	o.PodLogDir = logDir
	o.CNIConfDir = filepath.Join(dir, "cni-conf")
	o.CNIBridge = bridge
	o.ImageAirgapDir = airgap
	o.HealthzPort = 0
	o.Address = "127.0.0.1"
	o.Port = freePort(t)
	o.NodeLabels = map[string]string{"role": "it"}
	kctx, kcancel := context.WithCancel(ctx)
	s, err := Start(kctx, o, zaptest.NewLogger(t))
	if err != nil {
		kcancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kcancel()
		_ = s.Wait()
		unmountUnder(t, filepath.Join(root, "netns"))
	})
	return &testKubelet{env: env, server: s, nodeName: nodeName, root: root, logDir: logDir, bridge: bridge, pods: client.For[*corev1.Pod](env.Client), opts: o}
}

// busyboxPod is a pod of one busybox container "c" running script.
func (k *testKubelet) busyboxPod(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
	grace := int64(1)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      k.nodeName,
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "c", Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", script},
			}},
		},
	}
}

func TestKubeletRunsPods(t *testing.T) {
	k := startTestKubelet(t, "kubelet-it")
	env, s, nodeName, root, logDir, bridge := k.env, k.server, k.nodeName, k.root, k.logDir, k.bridge
	ctx := context.Background()

	// The node is registered with its status.
	n, err := client.For[*corev1.Node](env.Client).Get(ctx, "", nodeName)
	if err != nil {
		t.Fatal(err)
	}
	if n.Labels["kubernetes.io/hostname"] != nodeName || n.Labels["role"] != "it" || n.Labels["kubernetes.io/os"] != "linux" {
		t.Errorf("node labels = %v", n.Labels)
	}
	if !strings.HasPrefix(n.Status.NodeInfo.ContainerRuntimeVersion, "containerd://") {
		t.Errorf("containerRuntimeVersion = %q", n.Status.NodeInfo.ContainerRuntimeVersion)
	}
	if q := n.Status.Capacity[corev1.ResourcePods]; q.Value() != 110 {
		t.Errorf("pods capacity = %s, want 110", q.String())
	}
	if len(n.Status.Conditions) == 0 || n.Status.Conditions[len(n.Status.Conditions)-1].Type != corev1.NodeReady {
		t.Errorf("conditions = %v", n.Status.Conditions)
	}

	pods := k.pods
	mk := func(name, script string, policy corev1.RestartPolicy) *corev1.Pod {
		p := k.busyboxPod(name, script, policy)
		p.Spec.Containers[0].Env = []corev1.EnvVar{
			{Name: "GREETING", Value: "hello"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		}
		return p
	}
	p1, err := pods.Create(ctx, "default", mk("sleeper", `echo $GREETING from $POD_NAME; cat /etc/hosts; sleep 3600`, corev1.RestartPolicyAlways))
	if err != nil {
		t.Fatal(err)
	}
	p2, err := pods.Create(ctx, "default", mk("failer", "exit 1", corev1.RestartPolicyNever))
	if err != nil {
		t.Fatal(err)
	}

	_, cidr, _ := net.ParseCIDR(testPodCIDR)
	var running *corev1.Pod
	waitFor(t, "sleeper Running with a pod IP", 40*time.Second, func() (bool, error) {
		p, err := pods.Get(ctx, "default", "sleeper")
		if err != nil {
			return false, err
		}
		running = p
		ip := net.ParseIP(p.Status.PodIP)
		return p.Status.Phase == corev1.PodRunning && ip != nil && cidr.Contains(ip), fmt.Errorf("phase %s, podIP %q", p.Status.Phase, p.Status.PodIP)
	})
	cs := running.Status.ContainerStatuses
	if len(cs) != 1 || cs[0].State.Running == nil || !cs[0].Ready || !strings.HasPrefix(cs[0].ContainerID, "containerd://") {
		t.Errorf("container statuses = %+v", cs)
	}
	if running.Status.HostIP != "127.0.0.1" || running.Status.StartTime == nil || len(running.Status.PodIPs) != 1 {
		t.Errorf("status hostIP %q startTime %v podIPs %v", running.Status.HostIP, running.Status.StartTime, running.Status.PodIPs)
	}
	for _, c := range running.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			t.Errorf("condition %s = %s", c.Type, c.Status)
		}
	}

	logPath := logs.ContainerPath(logDir, "default", "sleeper", string(p1.UID), "c", 0)
	waitFor(t, "the log line", 10*time.Second, func() (bool, error) {
		b, err := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F hello from sleeper") && strings.Contains(string(b), running.Status.PodIP+"\tsleeper"), fmt.Errorf("log %q: %v", b, err)
	})

	// The apiserver serves pods/log from the kubelet API, as kubectl logs
	// asks for it.
	if _, err := os.Stat("/usr/bin/kubectl"); err == nil {
		out, err := exec.Command("/usr/bin/kubectl", "--kubeconfig", env.Kubeconfig, "logs", "sleeper", "--tail=100").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "hello from sleeper") {
			t.Fatalf("kubectl logs: %v\n%s", err, out)
		}
		out, err = exec.Command("/usr/bin/kubectl", "--kubeconfig", env.Kubeconfig, "logs", "sleeper", "--timestamps", "--tail=1").CombinedOutput()
		if err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 || !strings.Contains(string(out), "Z ") {
			t.Fatalf("kubectl logs --timestamps --tail=1: %v\n%s", err, out)
		}
	}

	waitFor(t, "failer Failed", 30*time.Second, func() (bool, error) {
		p, err := pods.Get(ctx, "default", "failer")
		if err != nil {
			return false, err
		}
		if p.Status.Phase != corev1.PodFailed {
			return false, fmt.Errorf("phase %s", p.Status.Phase)
		}
		cs := p.Status.ContainerStatuses
		if len(cs) != 1 || cs[0].State.Terminated == nil || cs[0].State.Terminated.ExitCode != 1 || cs[0].State.Terminated.Reason != "Error" || cs[0].RestartCount != 0 {
			t.Fatalf("failer statuses = %+v", cs)
		}
		return true, nil
	})

	// Deleting the running pod: the kubelet stops it, cleans up, and
	// removes the object.
	if _, err := pods.Delete(ctx, "default", "sleeper", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sleeper gone from the API", 30*time.Second, func() (bool, error) {
		_, err := pods.Get(ctx, "default", "sleeper")
		return apierrors.IsNotFound(err), err
	})
	left, err := s.Runtime.List(ctx, string(p1.UID))
	if err != nil || len(left) != 0 {
		t.Errorf("containers left of the deleted pod: %v, %v", left, err)
	}
	if _, err := os.Stat(filepath.Join(root, "netns", string(p1.UID))); !os.IsNotExist(err) {
		t.Errorf("netns of the deleted pod still there: %v", err)
	}
	waitFor(t, "the failed pod's sandbox to go", 10*time.Second, func() (bool, error) {
		left, err := s.Runtime.List(ctx, string(p2.UID))
		return err == nil && len(left) == 0, fmt.Errorf("left %v %v", left, err)
	})
	if brif, err := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif")); err == nil && len(brif) != 0 {
		t.Errorf("veths still on %s: %v", bridge, brif)
	}
	if _, err := pods.Delete(ctx, "default", "failer", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

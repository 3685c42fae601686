package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/namespaces"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiserverapp "github.com/coxswain/coxswain/apiserver/app"
	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/staticpods"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// staticTask is the running task of a static pod's container, as
// containerd has it.
type staticTask struct {
	id  string
	uid string
	pid uint32
}

// runningStaticTask finds the running container c of pod podName through
// containerd's own client.
func runningStaticTask(ctx context.Context, cc *containerd.Client, podName string) (staticTask, error) {
	ctx = namespaces.WithNamespace(ctx, containerruntime.Namespace)
	cs, err := cc.Containers(ctx)
	if err != nil {
		return staticTask{}, err
	}
	for _, ct := range cs {
		labels, err := ct.Labels(ctx)
		if err != nil || labels[containerruntime.LabelPodName] != podName || labels[containerruntime.LabelContainer] != "c" {
			continue
		}
		task, err := ct.Task(ctx, nil)
		if err != nil {
			continue
		}
		st, err := task.Status(ctx)
		if err != nil || st.Status != containerd.Running {
			continue
		}
		return staticTask{id: ct.ID(), uid: labels[containerruntime.LabelPodUID], pid: task.Pid()}, nil
	}
	return staticTask{}, fmt.Errorf("no running container c of pod %s", podName)
}

// TestStaticPods starts the kubelet with a manifest folder while its
// apiserver is down: the static pod runs. Once the apiserver is up, the
// node registers and the mirror pod appears, Running; a mirror deleted
// through the API comes back without the container restarting; the
// manifest removed, the pod and its mirror go.
func TestStaticPods(t *testing.T) {
	const nodeName = "static-it"
	n := setUpTestNode(t, "cxs-static-")
	dir, bridge, airgap, sock := n.dir, n.bridge, n.airgap, n.sock

	// The apiserver runs once for its PKI and kubeconfig on a fixed port,
	// then stops: the kubelet starts against an apiserver that is down.
	apiDir := filepath.Join(dir, "apiserver")
	apiPort := freePort(t)
	onPort := func(o *apiserverapp.Options) { o.SecurePort = apiPort }
	first := harness.Start(t, harness.WithDataDir(apiDir), onPort)
	kubeconfig := first.Kubeconfig
	if err := first.Server.Stop(); err != nil {
		t.Logf("apiserver stopped: %v", err)
	}

	root := filepath.Join(dir, "kubelet")
	// The node has no podCIDR while the apiserver is down: the CNI config
	// is there already.
	cniConf := filepath.Join(dir, "cni-conf")
	conf, err := network.BridgeConfig(bridge, testPodCIDR, filepath.Join(root, "cni", "networks"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cniConf, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cniConf, network.DefaultConfFile), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	manifests := filepath.Join(dir, "manifests")
	if err := os.MkdirAll(manifests, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(manifests, "web.yaml")
	if err := os.WriteFile(manifest, []byte(`apiVersion: v1
kind: Pod
metadata:
  name: static-web
  labels: {app: static-web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: `+images.BusyboxImage+`
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "echo static up; sleep 3600"]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A bad manifest beside it does not stop the good one.
	if err := os.WriteFile(filepath.Join(manifests, "bad.yaml"), []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: bad}\nspec: {containers: []}\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	o := NewOptions()
	o.Kubeconfig = kubeconfig
	o.HostnameOverride = nodeName
	o.NodeIP = "127.0.0.1"
	o.ContainerdAddress = sock
	o.RootDir = root
	o.PodLogDir = filepath.Join(dir, "pods-logs")
	o.CNIConfDir = cniConf
	o.CNIBridge = bridge
	o.ImageAirgapDir = airgap
	o.HealthzPort = 0
	o.Address = "127.0.0.1"
	o.Port = freePort(t)
	o.PodManifestPath = manifests
	o.FileCheckFrequency = 500 * time.Millisecond
	ctx := context.Background()
	kctx, kcancel := context.WithCancel(ctx)
	s, err := Start(kctx, o, zaptest.NewLogger(t))
	if err != nil {
		kcancel()
		t.Fatalf("kubelet did not start with the apiserver down: %v", err)
	}
	t.Cleanup(func() {
		kcancel()
		_ = s.Wait()
		unmountUnder(t, filepath.Join(root, "netns"))
	})

	cc, err := containerd.New(sock, containerd.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	podName := "static-web-" + nodeName
	var task staticTask
	waitFor(t, "the static pod's container running with the apiserver down", 60*time.Second, func() (bool, error) {
		task, err = runningStaticTask(ctx, cc, podName)
		return err == nil, err
	})
	if task.uid == "" {
		t.Fatalf("container %s has no pod UID label", task.id)
	}

	// The apiserver comes up: the node registers and the mirror appears,
	// Running, with the static pod's container.
	env := harness.Start(t, harness.WithDataDir(apiDir), onPort)
	pods := client.For[*corev1.Pod](env.Client)
	var mirror *corev1.Pod
	waitMirror := func(what string, not *corev1.Pod) {
		t.Helper()
		waitFor(t, what, 90*time.Second, func() (bool, error) {
			p, err := pods.Get(ctx, "default", podName)
			if err != nil {
				return false, err
			}
			if not != nil && p.UID == not.UID {
				return false, errors.New("still the old mirror")
			}
			if p.Annotations[staticpods.ConfigMirrorAnnotation] != task.uid || p.DeletionTimestamp != nil {
				return false, fmt.Errorf("annotations %v deletionTimestamp %v", p.Annotations, p.DeletionTimestamp)
			}
			cs := p.Status.ContainerStatuses
			if p.Status.Phase != corev1.PodRunning || len(cs) != 1 || cs[0].State.Running == nil {
				return false, fmt.Errorf("phase %q containers %+v", p.Status.Phase, cs)
			}
			mirror = p
			return true, nil
		})
	}
	waitMirror("the mirror pod Running", nil)
	if refs := mirror.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].Name != nodeName {
		t.Errorf("mirror ownerReferences %+v; want the Node %s", refs, nodeName)
	}
	if mirror.Spec.NodeName != nodeName || mirror.Annotations[staticpods.ConfigSourceAnnotation] != "file" {
		t.Errorf("mirror nodeName %q annotations %v", mirror.Spec.NodeName, mirror.Annotations)
	}
	if got := mirror.Status.ContainerStatuses[0].ContainerID; got != "containerd://"+task.id {
		t.Errorf("mirror's containerID %q, want containerd://%s", got, task.id)
	}
	if _, err := client.For[*corev1.Node](env.Client).Get(ctx, "", nodeName); err != nil {
		t.Errorf("node not registered: %v", err)
	}

	// The mirror deleted through the API comes back; the container runs on.
	if _, err := pods.Delete(ctx, "default", podName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	old := mirror
	waitMirror("a new mirror pod after the deletion", old)
	now, err := runningStaticTask(ctx, cc, podName)
	if err != nil || now != task {
		t.Errorf("container after the mirror's deletion: %+v, %v; want %+v still running", now, err, task)
	}
	if rc := mirror.Status.ContainerStatuses[0].RestartCount; rc != 0 {
		t.Errorf("restartCount %d, want 0", rc)
	}

	// A changed manifest is another pod: the old one stops, the new one
	// runs, and its mirror replaces the stale one.
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(manifest, []byte(strings.Replace(string(b), "echo static up", "echo static changed", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	oldTask := task
	waitFor(t, "the changed static pod running", 60*time.Second, func() (bool, error) {
		task, err = runningStaticTask(ctx, cc, podName)
		if err == nil && task.uid == oldTask.uid {
			return false, errors.New("still the old pod")
		}
		return err == nil, err
	})
	waitFor(t, "the old version's containers gone", 60*time.Second, func() (bool, error) {
		left, err := s.Runtime.List(ctx, oldTask.uid)
		return err == nil && len(left) == 0, fmt.Errorf("containers %v, %v", left, err)
	})
	old = mirror
	waitMirror("the mirror of the changed pod", old)

	// The manifest removed: the pod stops and the mirror goes.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the static pod's containers gone", 60*time.Second, func() (bool, error) {
		left, err := s.Runtime.List(ctx, task.uid)
		return err == nil && len(left) == 0, fmt.Errorf("containers %v, %v", left, err)
	})
	waitFor(t, "the mirror pod gone", 30*time.Second, func() (bool, error) {
		_, err := pods.Get(ctx, "default", podName)
		return apierrors.IsNotFound(err), err
	})
	if _, err := os.Stat(filepath.Join(root, "netns", task.uid)); !os.IsNotExist(err) {
		t.Errorf("netns of the removed static pod: %v", err)
	}
}

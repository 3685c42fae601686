package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	cimages "github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
)

// Targets of the pod start benchmark (issue 6).
const (
	podStartP99Target   = time.Second
	podStartP50VsRawMax = 1.5 // the kubelet's p50 over containerd's own
)

// rawNamespace is the containerd namespace of the baseline's containers,
// apart from the kubelet's.
const rawNamespace = "kubelet-bench-raw"

// startPod is a single-container pod (busybox sleeping), already bound to
// the node, with no probe: its start is the kubelet's pod start path alone.
func startPod(i int, node string) *corev1.Pod {
	grace := int64(0)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("start-%03d", i), Labels: map[string]string{"app": "bench-start"}},
		Spec: corev1.PodSpec{
			NodeName: node, RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "c", Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sleep", "3600"},
			}},
		},
	}
}

// podStart creates the pods one after the other, each once the previous
// one runs, and times each from its create call to the watch event that
// shows it Running; the pods are deleted after.
func (e *env) podStart(ctx context.Context, rep *report) error {
	c := e.apiserver.Clients[0]
	pods := client.For[*corev1.Pod](c)
	w, err := pods.Watch(ctx, metav1.NamespaceDefault, metav1.ListOptions{LabelSelector: "app=bench-start"})
	if err != nil {
		return err
	}
	defer w.Stop()
	var lat []time.Duration
	for i := range e.cfg.startPods {
		p := startPod(i, "bench-node")
		start := time.Now()
		if _, err := pods.Create(ctx, metav1.NamespaceDefault, p); err != nil {
			return err
		}
		if err := waitRunning(ctx, w, p.Name, 30*time.Second); err != nil {
			return fmt.Errorf("pod %s: %w", p.Name, err)
		}
		lat = append(lat, time.Since(start))
	}
	rep.podStartSlowest = slices.Index(lat, slices.Max(lat))
	e.logf("  kubelet: in creation order: %v", lat)
	slices.Sort(lat)
	rep.podStart = lat
	e.logf("  kubelet: %d pods, create to Running p50 %v, p99 %v (the slowest: pod %d)", len(lat), benchkit.Percentile(lat, 50), benchkit.Percentile(lat, 99), rep.podStartSlowest)

	// The pods go before the next phases.
	list, _, err := pods.List(ctx, metav1.NamespaceDefault, metav1.ListOptions{LabelSelector: "app=bench-start"})
	if err != nil {
		return err
	}
	for _, p := range list {
		if _, err := pods.Delete(ctx, metav1.NamespaceDefault, p.Name, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	return waitUntil(ctx, 2*time.Minute, func() error {
		left, _, err := pods.List(ctx, metav1.NamespaceDefault, metav1.ListOptions{LabelSelector: "app=bench-start"})
		if err == nil && len(left) > 0 {
			err = fmt.Errorf("%d start pods left", len(left))
		}
		return err
	})
}

// waitRunning waits for the watch to show the pod Running.
func waitRunning(ctx context.Context, w watch.Interface, name string, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("not Running within %v", timeout)
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("watch ended")
			}
			p, isPod := ev.Object.(*corev1.Pod)
			if !isPod || p.Name != name {
				continue
			}
			if p.Status.Phase == corev1.PodRunning {
				return nil
			}
		}
	}
}

// rawStart is the baseline: containerd's own time to create and start the
// same containers as a pod's (the pause sandbox, then busybox sleeping in
// its network, IPC and UTS namespaces), through the containerd Go client
// with no kubelet, one pod's worth after the other, in a namespace of its
// own; everything is removed after.
func (e *env) rawStart(ctx context.Context, rep *report) error {
	cl, err := containerd.New(e.sock, containerd.WithTimeout(10*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx = namespaces.WithNamespace(ctx, rawNamespace)
	// The images, imported from the same archives as the kubelet's.
	imgs := map[string]containerd.Image{}
	entries, err := os.ReadDir(e.airgap)
	if err != nil {
		return err
	}
	for _, ent := range entries {
		if !strings.HasSuffix(ent.Name(), ".tar") {
			continue
		}
		f, err := os.Open(filepath.Join(e.airgap, ent.Name()))
		if err != nil {
			return err
		}
		got, err := cl.Import(ctx, f)
		_ = f.Close()
		if err != nil {
			return fmt.Errorf("import %s: %w", ent.Name(), err)
		}
		for _, ki := range got {
			img := containerd.NewImage(cl, ki)
			if err := img.Unpack(ctx, "overlayfs"); err != nil {
				return fmt.Errorf("unpack %s: %w", ki.Name, err)
			}
			imgs[ki.Name] = img
		}
	}
	for _, ref := range []string{images.PauseImage, images.BusyboxImage} {
		name, err := images.NormalizeName(ref)
		if err != nil {
			return err
		}
		img, ok := imgs[name]
		if !ok {
			return fmt.Errorf("image %s not in %s", name, e.airgap)
		}
		imgs[ref] = img
	}
	var started []containerd.Container
	defer func() {
		dctx := namespaces.WithNamespace(context.Background(), rawNamespace)
		for i := len(started) - 1; i >= 0; i-- {
			if t, err := started[i].Task(dctx, nil); err == nil {
				_, _ = t.Delete(dctx, containerd.WithProcessKill)
			}
			_ = started[i].Delete(dctx, containerd.WithSnapshotCleanup)
		}
		for _, img := range imgs {
			_ = cl.ImageService().Delete(dctx, img.Name(), cimages.SynchronousDelete())
		}
	}()
	run := func(id string, img containerd.Image, opts ...oci.SpecOpts) (containerd.Container, uint32, error) {
		ct, err := cl.NewContainer(ctx, id, containerd.WithImage(img), containerd.WithSnapshotter("overlayfs"),
			containerd.WithNewSnapshot(id, img), containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, opts...)...))
		if err != nil {
			return nil, 0, err
		}
		started = append(started, ct)
		task, err := ct.NewTask(ctx, cio.NullIO)
		if err != nil {
			return ct, 0, err
		}
		if err := task.Start(ctx); err != nil {
			return ct, 0, err
		}
		return ct, task.Pid(), nil
	}
	var lat []time.Duration
	for i := range e.cfg.startPods {
		start := time.Now()
		_, pid, err := run(fmt.Sprintf("raw-%03d-pause", i), imgs[images.PauseImage])
		if err != nil {
			return err
		}
		if _, _, err := run(fmt.Sprintf("raw-%03d-c", i), imgs[images.BusyboxImage],
			oci.WithProcessArgs("sleep", "3600"),
			oci.WithLinuxNamespace(nsOf(specs.NetworkNamespace, "net", pid)),
			oci.WithLinuxNamespace(nsOf(specs.IPCNamespace, "ipc", pid)),
			oci.WithLinuxNamespace(nsOf(specs.UTSNamespace, "uts", pid)),
		); err != nil {
			return err
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	rep.rawStart = lat
	e.logf("  containerd alone: %d pods' containers, create+start p50 %v, p99 %v", len(lat), benchkit.Percentile(lat, 50), benchkit.Percentile(lat, 99))
	return nil
}

// nsOf is the namespace of process pid, to join.
func nsOf(t specs.LinuxNamespaceType, file string, pid uint32) specs.LinuxNamespace {
	return specs.LinuxNamespace{Type: t, Path: fmt.Sprintf("/proc/%d/ns/%s", pid, file)}
}

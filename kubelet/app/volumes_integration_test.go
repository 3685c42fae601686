package app

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/images"
	"github.com/coxswain/coxswain/pkg/client"
)

// TestKubeletVolumes runs pods with volumes on real containerd: an
// emptyDir shared by two containers, a memory emptyDir, configMap (followed
// while the container runs), secret (on tmpfs), downwardAPI, projected,
// hostPath (read-only), a PersistentVolumeClaim bound to a hostPath
// PersistentVolume and a configMap key mounted by subPath; a subPath that
// escapes its volume through a symlink and a configMap item naming a
// missing key, each refused with a reason and an Event while the other pods
// run on; and the cleanup of everything, also of a pod deleted while the
// kubelet was down.
func TestKubeletVolumes(t *testing.T) {
	k := startTestKubelet(t, "kubelet-volumes")
	// Stop the kubelet (whichever runs last) before the pods' mounts go, so
	// a failed test leaves none behind.
	t.Cleanup(func() {
		_ = k.server.Stop()
		unmountUnder(t, filepath.Join(k.root, "pods"))
	})
	ctx := context.Background()
	c := k.env.Client

	hostDir, err := os.MkdirTemp("", "cxs-volumes-host-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(hostDir) })
	pvDir := filepath.Join(hostDir, "pv")
	if err := os.Mkdir(pvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p, content := range map[string]string{"hello": "from the host", "pv/data": "persistent"} {
		if err := os.WriteFile(filepath.Join(hostDir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink in the hostPath volume leading out of it.
	if err := os.Symlink("/", filepath.Join(hostDir, "escape")); err != nil {
		t.Fatal(err)
	}

	// The pods' service account, which no controller makes here: the
	// projected token is issued for it.
	if _, err := client.For[*corev1.ServiceAccount](c).Create(ctx, "default", &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	cms := client.For[*corev1.ConfigMap](c)
	if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "app-config"},
		Data:       map[string]string{"greeting": "hello", "color": "blue"},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Secret](c).Create(ctx, "default", &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "app-secret"},
		Data:       map[string][]byte{"password": []byte("s3cret")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.PersistentVolume](c).Create(ctx, "", &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "it-pv"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: pvDir, Type: new(corev1.HostPathDirectory)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.PersistentVolumeClaim](c).Create(ctx, "default", &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "it-claim"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  "it-pv",
		},
	}); err != nil {
		t.Fatal(err)
	}

	memLimit := resource.MustParse("16Mi")
	cmRef := corev1.LocalObjectReference{Name: "app-config"}
	vols := []corev1.Volume{
		{Name: "shared", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &memLimit}}},
		{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: cmRef}}},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "app-secret", DefaultMode: new(int32(0o400))}}},
		{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}},
		}}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir, Type: new(corev1.HostPathDirectory)}}},
		{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "it-claim"}}},
		{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: cmRef, Items: []corev1.KeyToPath{{Key: "greeting", Path: "cfg/greeting"}}}},
			{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app-secret"}}},
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
		}}}},
	}
	pod := k.busyboxPod("volumes", "sleep 3600", corev1.RestartPolicyAlways)
	pod.Labels = map[string]string{"app": "volumes"}
	pod.Spec.Volumes = vols
	pod.Spec.Containers = []corev1.Container{
		{
			Name: "writer", Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command:      []string{"sh", "-c", "echo written-by-writer > /shared/note && exec sleep 3600"},
			VolumeMounts: []corev1.VolumeMount{{Name: "shared", MountPath: "/shared"}},
		},
		{
			Name: "reader", Image: images.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"sleep", "3600"},
			VolumeMounts: []corev1.VolumeMount{
				{Name: "shared", MountPath: "/shared"},
				{Name: "mem", MountPath: "/mem"},
				{Name: "config", MountPath: "/etc/config"},
				{Name: "config", MountPath: "/etc/greeting", SubPath: "greeting"},
				{Name: "secret", MountPath: "/etc/secret"},
				{Name: "podinfo", MountPath: "/etc/podinfo"},
				{Name: "host", MountPath: "/host", ReadOnly: true},
				{Name: "claim", MountPath: "/claim"},
				{Name: "proj", MountPath: "/proj"},
			},
		},
	}
	created, err := k.pods.Create(ctx, "default", pod)
	if err != nil {
		t.Fatal(err)
	}
	uid := created.UID
	ids := map[string]string{}
	k.waitPod(t, "volumes", "Running with both containers", 90*time.Second, func(p *corev1.Pod) error {
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 2 {
			return fmt.Errorf("phase %s, statuses %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.State.Running == nil {
				return fmt.Errorf("container %s: %+v", cs.Name, cs.State)
			}
			ids[cs.Name] = cs.ContainerID
		}
		return nil
	})
	reader := strings.TrimPrefix(ids["reader"], "containerd://")

	// The emptyDir is shared: the reader sees what the writer wrote.
	k.waitExec(t, reader, "the writer's note in the shared emptyDir", 20*time.Second, "written-by-writer\n", "cat", "/shared/note")
	for path, want := range map[string]string{
		"/etc/config/greeting": "hello",
		"/etc/config/color":    "blue",
		"/etc/greeting":        "hello",
		"/etc/secret/password": "s3cret",
		"/etc/podinfo/labels":  `app="volumes"`,
		"/etc/podinfo/name":    "volumes",
		"/host/hello":          "from the host",
		"/claim/data":          "persistent",
		"/proj/cfg/greeting":   "hello",
		"/proj/password":       "s3cret",
	} {
		if out, code := k.execOut(t, reader, "cat", path); code != 0 || out != want {
			t.Errorf("cat %s = %q (exit %d), want %q", path, out, code, want)
		}
	}
	if out, code := k.execOut(t, reader, "ls", "-lL", "/etc/secret/password"); code != 0 || !strings.HasPrefix(out, "-r-------- ") {
		t.Errorf("secret file %q (exit %d), want mode 0400 (-r--------)", out, code)
	}
	if out, code := k.execOut(t, reader, "cat", "/proj/token"); code != 0 || strings.Count(out, ".") != 2 {
		t.Errorf("/proj/token = %q (exit %d), want a JWT", out, code)
	}

	// Inside the container: the secret, the downward API, the projection
	// and the memory emptyDir are tmpfs (the latter of the sizeLimit); the
	// configMap is not; the hostPath is read-only, as are API data volumes.
	mounts, code := k.execOut(t, reader, "cat", "/proc/mounts")
	if code != 0 {
		t.Fatalf("cat /proc/mounts: exit %d: %s", code, mounts)
	}
	mountOf := func(dst string) []string {
		for _, line := range strings.Split(mounts, "\n") {
			if f := strings.Fields(line); len(f) >= 4 && f[1] == dst {
				return f
			}
		}
		t.Errorf("no mount at %s in the container:\n%s", dst, mounts)
		return []string{"", "", "", ""}
	}
	for _, dst := range []string{"/etc/secret", "/etc/podinfo", "/proj", "/mem"} {
		if f := mountOf(dst); f[2] != "tmpfs" {
			t.Errorf("%s is %s in the container, want tmpfs", dst, f[2])
		}
	}
	if f := mountOf("/mem"); !strings.Contains(f[3], "size=16384k") {
		t.Errorf("/mem options %q, want size=16384k", f[3])
	}
	if f := mountOf("/etc/config"); f[2] == "tmpfs" {
		t.Error("/etc/config is a tmpfs; a configMap lives on the node's disk")
	}
	for _, dst := range []string{"/host", "/etc/config", "/etc/secret"} {
		if f := mountOf(dst); !strings.HasPrefix(f[3], "ro,") && f[3] != "ro" {
			t.Errorf("%s options %q, want read-only", dst, f[3])
		}
	}
	if out, code := k.execOut(t, reader, "touch", "/host/written-by-pod"); code == 0 || !strings.Contains(out, "Read-only file system") {
		t.Errorf("touch in the read-only hostPath: exit %d, %q", code, out)
	}
	if out, code := k.execOut(t, reader, "touch", "/shared/ok"); code != 0 {
		t.Errorf("touch in the emptyDir: exit %d, %q", code, out)
	}

	// On the node: the secret's directory is a tmpfs mount; the configMap's
	// has upstream's layout.
	volDir := filepath.Join(k.root, "pods", string(uid), "volumes")
	if fs := hostMountType(t, filepath.Join(volDir, "kubernetes.io~secret", "secret")); fs != "tmpfs" {
		t.Errorf("the secret volume on the node is mounted as %q, want tmpfs", fs)
	}
	cfgDir := filepath.Join(volDir, "kubernetes.io~configmap", "config")
	data, err := os.Readlink(filepath.Join(cfgDir, "..data"))
	if err != nil || !strings.HasPrefix(data, "..20") {
		t.Errorf("..data -> %q, %v; want a timestamped directory", data, err)
	}
	if l, err := os.Readlink(filepath.Join(cfgDir, "greeting")); err != nil || l != "..data/greeting" {
		t.Errorf("greeting -> %q, %v; want ..data/greeting", l, err)
	}

	// A subPath escaping its volume through a symlink, and a configMap item
	// naming a key the ConfigMap lacks: the containers are not started.
	escape := k.busyboxPod("escape", "sleep 3600", corev1.RestartPolicyAlways)
	escape.Spec.Volumes = []corev1.Volume{{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: hostDir}}}}
	escape.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "host", MountPath: "/mnt", SubPath: "escape/etc"}}
	missingKey := k.busyboxPod("missing-key", "sleep 3600", corev1.RestartPolicyAlways)
	missingKey.Spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: cmRef, Items: []corev1.KeyToPath{{Key: "nope", Path: "nope"}},
	}}}}
	missingKey.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "config", MountPath: "/etc/config"}}
	var refused []types.UID
	for _, p := range []*corev1.Pod{escape, missingKey} {
		out, err := k.pods.Create(ctx, "default", p)
		if err != nil {
			t.Fatal(err)
		}
		refused = append(refused, out.UID)
	}
	waiting := func(reason, msg string) func(p *corev1.Pod) error {
		return func(p *corev1.Pod) error {
			cs := p.Status.ContainerStatuses
			if len(cs) != 1 || cs[0].State.Waiting == nil || cs[0].State.Waiting.Reason != reason || !strings.Contains(cs[0].State.Waiting.Message, msg) {
				return fmt.Errorf("statuses %+v", cs)
			}
			if cs[0].RestartCount != 0 || cs[0].ContainerID != "" {
				return fmt.Errorf("the container ran: %+v", cs[0])
			}
			return nil
		}
	}
	escapeMsg := `failed to prepare subPath for volumeMount "host" of container "c": subPath "escape/etc": a symlink resolves outside the volume`
	k.waitPod(t, "escape", "waiting with CreateContainerConfigError", 60*time.Second, waiting("CreateContainerConfigError", escapeMsg))
	k.waitPodEvent(t, "escape", "spec.containers{c}", corev1.EventTypeWarning, "Failed", "Error: "+escapeMsg, 30*time.Second)
	missingMsg := `MountVolume.SetUp failed for volume "config" : configmap references non-existent config key: nope`
	k.waitPod(t, "missing-key", "waiting with CreateContainerConfigError", 60*time.Second, waiting("CreateContainerConfigError", missingMsg))
	k.waitPodEvent(t, "missing-key", "", corev1.EventTypeWarning, "FailedMount", missingMsg, 30*time.Second)
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("the node's /etc: %v", err)
	}

	// The ConfigMap changes: the mounted file follows within the sync
	// period, in the same container, never restarted. A removed key goes.
	// The key missing-key waited for comes: that pod starts.
	cm, err := cms.Get(ctx, "default", "app-config")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data = map[string]string{"greeting": "bonjour", "nope": "found"}
	updated := time.Now()
	if _, err := cms.Update(ctx, "default", cm); err != nil {
		t.Fatal(err)
	}
	k.waitExec(t, reader, "the updated greeting", 30*time.Second, "bonjour", "cat", "/etc/config/greeting")
	t.Logf("the configMap update reached the container in %s", time.Since(updated).Round(time.Millisecond))
	k.waitExec(t, reader, "the updated projection", 10*time.Second, "bonjour", "cat", "/proj/cfg/greeting")
	if out, code := k.execOut(t, reader, "ls", "/etc/config/color"); code == 0 {
		t.Errorf("the removed key is still mounted: %q", out)
	}
	var fixedID string
	k.waitPod(t, "missing-key", "Running once its ConfigMap has the key", 30*time.Second, func(p *corev1.Pod) error {
		cs, err := runningContainer(p)
		if err == nil {
			fixedID = strings.TrimPrefix(cs.ContainerID, "containerd://")
		}
		return err
	})
	if out, code := k.execOut(t, fixedID, "cat", "/etc/config/nope"); code != 0 || out != "found" {
		t.Errorf("missing-key's /etc/config/nope = %q (exit %d), want found", out, code)
	}
	p, err := k.pods.Get(ctx, "default", "volumes")
	if err != nil {
		t.Fatal(err)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.RestartCount != 0 || cs.ContainerID != ids[cs.Name] || cs.State.Running == nil {
			t.Errorf("container %s: restartCount %d, id %s (was %s), state %+v; want it running on, untouched", cs.Name, cs.RestartCount, cs.ContainerID, ids[cs.Name], cs.State)
		}
	}

	// Deleting the pods: no mount and no directory of theirs is left; the
	// node's paths are untouched.
	for _, name := range []string{"volumes", "escape", "missing-key"} {
		if _, err := k.pods.Delete(ctx, "default", name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"volumes", "escape", "missing-key"} {
		waitFor(t, name+" gone from the API", 60*time.Second, func() (bool, error) {
			_, err := k.pods.Get(ctx, "default", name)
			return apierrors.IsNotFound(err), err
		})
	}
	for _, u := range append(refused, uid) {
		k.wantPodGone(t, u)
	}
	for p, want := range map[string]string{"hello": "from the host", "pv/data": "persistent"} {
		if b, err := os.ReadFile(filepath.Join(hostDir, p)); err != nil || string(b) != want {
			t.Errorf("host file %s: %q, %v", p, b, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(hostDir, "written-by-pod")); !os.IsNotExist(err) {
		t.Errorf("the read-only hostPath was written: %v", err)
	}

	// A pod deleted while the kubelet is down: the next kubelet finds it
	// on the node, not bound any more, and tears it down.
	orphan := k.busyboxPod("orphan", "sleep 3600", corev1.RestartPolicyAlways)
	orphan.Spec.Volumes = []corev1.Volume{
		vols[1], // mem
		vols[3], // secret
	}
	orphan.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "mem", MountPath: "/mem"}, {Name: "secret", MountPath: "/etc/secret", SubPath: "password"}}
	created, err = k.pods.Create(ctx, "default", orphan)
	if err != nil {
		t.Fatal(err)
	}
	k.waitPod(t, "orphan", "Running", 60*time.Second, func(p *corev1.Pod) error {
		_, err := runningContainer(p)
		return err
	})
	if err := k.server.Stop(); err != nil {
		t.Fatal(err)
	}
	zero := int64(0)
	if _, err := k.pods.Delete(ctx, "default", "orphan", metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	if left, _ := hostMountsUnder(t, filepath.Join(k.root, "pods", string(created.UID))); len(left) == 0 {
		t.Fatal("the orphan has no mounts left to clean up: the test proves nothing")
	}
	k.restart(t)
	k.wantPodGone(t, created.UID)
}

// restart starts the kubelet again with the same options (its state in the
// root directory and containerd stays); the cleanup stops it.
func (k *testKubelet) restart(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, k.opts, zaptest.NewLogger(t))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = s.Wait()
	})
	k.server = s
}

// wantPodGone waits until the node holds nothing of pod uid: no container,
// no mount, no directory.
func (k *testKubelet) wantPodGone(t *testing.T, uid types.UID) {
	t.Helper()
	podDir := filepath.Join(k.root, "pods", string(uid))
	waitFor(t, "pod "+string(uid)+" gone from the node", 60*time.Second, func() (bool, error) {
		left, err := k.server.Runtime.List(context.Background(), string(uid))
		if err != nil || len(left) > 0 {
			return false, fmt.Errorf("containers %v, %v", left, err)
		}
		if mps, _ := hostMountsUnder(t, podDir); len(mps) > 0 {
			return false, fmt.Errorf("mounts %q", mps)
		}
		if _, err := os.Lstat(podDir); !os.IsNotExist(err) {
			return false, fmt.Errorf("pod directory: %v", err)
		}
		return true, nil
	})
}

// execOut runs a command in a container and returns its output and exit
// code.
func (k *testKubelet) execOut(t *testing.T, id string, cmd ...string) (string, int) {
	t.Helper()
	out, code, err := k.server.Runtime.Exec(context.Background(), id, cmd, 10*time.Second)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return string(out), code
}

// waitExec waits until the command's output is want.
func (k *testKubelet) waitExec(t *testing.T, id, what string, timeout time.Duration, want string, cmd ...string) {
	t.Helper()
	waitFor(t, what, timeout, func() (bool, error) {
		out, code := k.execOut(t, id, cmd...)
		return code == 0 && out == want, fmt.Errorf("%q: exit %d, %q", cmd, code, out)
	})
}

// waitPodEvent waits for a kubelet Event about the pod (fieldPath "" for
// the pod itself) with the reason and a message containing msg.
func (k *testKubelet) waitPodEvent(t *testing.T, pod, fieldPath, eventType, reason, msg string, timeout time.Duration) {
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
			if ev.Reason == reason && ev.Type == eventType && strings.Contains(ev.Message, msg) &&
				ev.Source.Component == "kubelet" && ev.InvolvedObject.FieldPath == fieldPath {
				return true, nil
			}
			seen = append(seen, fmt.Sprintf("%s %s (%s, %s): %s", ev.Type, ev.Reason, ev.Source.Component, ev.InvolvedObject.FieldPath, ev.Message))
		}
		return false, fmt.Errorf("events about %s: %q", pod, seen)
	})
}

// hostMountsUnder lists the node's mount points at dir or below.
func hostMountsUnder(t *testing.T, dir string) ([]string, error) {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fs := strings.Fields(s.Text())
		if len(fs) > 1 && (fs[1] == dir || strings.HasPrefix(fs[1], dir+"/")) {
			out = append(out, fs[1])
		}
	}
	return out, s.Err()
}

// hostMountType is the type of the node's mount at dir, "" when none.
func hostMountType(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	typ := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) > 2 && fs[1] == dir {
			typ = fs[2]
		}
	}
	return typ
}

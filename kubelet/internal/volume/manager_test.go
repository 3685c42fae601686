package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"

	"github.com/coxswain/coxswain/kubelet/internal/mountinfo"
)

type recordedEvent struct{ eventType, reason, message string }

type fakeRecorder struct {
	mu     sync.Mutex
	events []recordedEvent
}

func (r *fakeRecorder) Eventf(_ runtime.Object, eventType, reason, _ string, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, recordedEvent{eventType, reason, fmt.Sprintf(format, args...)})
}

func (r *fakeRecorder) find(reason, substr string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.reason == reason && strings.Contains(e.message, substr) {
			return true
		}
	}
	return false
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestManager sets up every kind of volume of a pod against a real
// apiserver, follows a ConfigMap change, resolves subPaths and tears it all
// down.
func TestManager(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the volume manager test needs root (tmpfs and bind mounts)")
	}
	env := harness.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	cms := client.For[*corev1.ConfigMap](env.Client)
	if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cfg"}, Data: map[string]string{"greeting": "hello", "other": "x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.Secret](env.Client).Create(ctx, "default", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Data: map[string][]byte{"password": []byte("s3cret")}}); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	pvDir := filepath.Join(host, "pv")
	if _, err := client.For[*corev1.PersistentVolume](env.Client).Create(ctx, "", &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pv1"},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: pvDir, Type: new(corev1.HostPathDirectoryOrCreate)}},
		},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.For[*corev1.PersistentVolumeClaim](env.Client).Create(ctx, "default", &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim"},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			VolumeName:  "pv1",
		},
	}); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	kicked := make(chan types.UID, 64)
	rec := &fakeRecorder{}
	m := New(Config{
		RootDir: root, Client: env.Client, Recorder: rec, Logger: zaptest.NewLogger(t),
		OnChange: func(uid types.UID) {
			select {
			case kicked <- uid:
			default:
			}
		},
	})
	t.Cleanup(func() {
		cancel()
		m.Wait()
		_ = unmountAll(root)
	})

	// The pod exists in the API, so that its projected token can be bound
	// to it.
	apiPod := createTokenPod(ctx, t, env, "p")
	sizeLimit := resource.MustParse("8Mi")
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: apiPod.UID, Labels: map[string]string{"app": "demo"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "default",
			Containers:         []corev1.Container{{Name: "c"}},
			Volumes: []corev1.Volume{
				{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, DefaultMode: mode(0o644)}}},
				{Name: "sec", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "sec", DefaultMode: mode(0o400)}}},
				{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
					{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				}}}},
				{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory, SizeLimit: &sizeLimit}}},
				{Name: "disk", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: host, Type: new(corev1.HostPathDirectory)}}},
				{Name: "claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "claim"}}},
				{Name: "proj", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{DefaultMode: mode(0o440), Sources: []corev1.VolumeProjection{
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "greeting", Path: "cfg/greeting"}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "name", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "absent"}, Optional: new(true)}},
				}}}},
			},
		},
	}
	m.RegisterPod(ctx, pod)
	vols, errs := m.SetUp(ctx, pod)
	if len(errs) > 0 {
		t.Fatalf("SetUp: %v", errs)
	}
	podDir := filepath.Join(root, "pods", string(pod.UID))
	wantPaths := map[string]Mounted{
		"cfg":   {HostPath: filepath.Join(podDir, "volumes", kindConfigMap, "cfg"), ReadOnly: true},
		"sec":   {HostPath: filepath.Join(podDir, "volumes", kindSecret, "sec"), ReadOnly: true},
		"info":  {HostPath: filepath.Join(podDir, "volumes", kindDownwardAPI, "info"), ReadOnly: true},
		"mem":   {HostPath: filepath.Join(podDir, "volumes", kindEmptyDir, "mem")},
		"disk":  {HostPath: filepath.Join(podDir, "volumes", kindEmptyDir, "disk")},
		"host":  {HostPath: host},
		"claim": {HostPath: pvDir},
		"proj":  {HostPath: filepath.Join(podDir, "volumes", kindProjected, "proj"), ReadOnly: true},
	}
	for name, want := range wantPaths {
		if vols[name] != want {
			t.Errorf("volume %s = %+v, want %+v", name, vols[name], want)
		}
	}

	// Secrets, the downward API, projections and memory emptyDirs are on
	// tmpfs; a configMap and a disk emptyDir are not.
	for name, wantTmpfs := range map[string]bool{"sec": true, "info": true, "proj": true, "mem": true, "cfg": false, "disk": false} {
		mi, ok, err := mountAt(vols[name].HostPath)
		if err != nil {
			t.Fatal(err)
		}
		if ok != wantTmpfs || (ok && mi.FSType != "tmpfs") {
			t.Errorf("volume %s: mounted %v (%s), want a tmpfs: %v", name, ok, mi.FSType, wantTmpfs)
		}
		if name == "mem" && !strings.Contains(mi.Options, "size=8192k") {
			t.Errorf("memory emptyDir options %q, want size=8192k", mi.Options)
		}
	}
	for p, want := range map[string]string{
		"cfg/greeting":      "hello",
		"sec/password":      "s3cret",
		"info/labels":       `app="demo"`,
		"proj/cfg/greeting": "hello",
		"proj/password":     "s3cret",
		"proj/name":         "p",
	} {
		name, file, _ := strings.Cut(p, "/")
		if got := readFile(t, filepath.Join(vols[name].HostPath, file)); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if info, err := os.Stat(filepath.Join(vols["sec"].HostPath, "password")); err != nil || info.Mode().Perm() != 0o400 {
		t.Errorf("secret file mode: %v, %v; want 0400", info, err)
	}
	// The serviceAccountToken source is a token bound to the pod, which
	// the apiserver accepts as a bearer token.
	token := readFile(t, filepath.Join(vols["proj"].HostPath, "token"))
	if info, err := os.Stat(filepath.Join(vols["proj"].HostPath, "token")); err != nil || info.Mode().Perm() != 0o440 {
		t.Errorf("projected token mode: %v, %v; want 0440", info, err)
	}
	checkPodToken(t, env, token, pod)
	if rec.find("FailedMount", "") {
		t.Errorf("FailedMount Events: %+v", rec.events)
	}

	// A ConfigMap change reaches the pod through its watch, and the next
	// set up swaps the files.
	for len(kicked) > 0 {
		<-kicked
	}
	cm, err := cms.Get(ctx, "default", "cfg")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["greeting"] = "bonjour"
	delete(cm.Data, "other")
	if _, err := cms.Update(ctx, "default", cm); err != nil {
		t.Fatal(err)
	}
	select {
	case uid := <-kicked:
		if uid != pod.UID {
			t.Fatalf("OnChange(%s), want %s", uid, pod.UID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no OnChange within 10s of the ConfigMap update")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, errs := m.SetUp(ctx, pod); len(errs) > 0 {
			t.Fatal(errs)
		}
		if readFile(t, filepath.Join(vols["cfg"].HostPath, "greeting")) == "bonjour" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the configMap volume did not follow the update")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Lstat(filepath.Join(vols["cfg"].HostPath, "other")); !os.IsNotExist(err) {
		t.Errorf("a removed key is still there: %v", err)
	}
	if got := readFile(t, filepath.Join(vols["proj"].HostPath, "cfg/greeting")); got != "bonjour" {
		t.Errorf("projected cfg/greeting = %q after the update", got)
	}

	// Container mounts: a subPath through a configMap key's symlinks, read
	// only, HostToContainer; a subPath escaping through a symlink is refused.
	if err := os.Symlink("/", filepath.Join(vols["disk"].HostPath, "escape")); err != nil {
		t.Fatal(err)
	}
	c := &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{
		{Name: "cfg", MountPath: "/etc/greeting", SubPath: "greeting"},
		{Name: "disk", MountPath: "/data", ReadOnly: true, MountPropagation: new(corev1.MountPropagationHostToContainer)},
		{Name: "disk", MountPath: "/per-pod", SubPathExpr: "$(POD)/cache"},
	}}
	mounts, err := m.Mounts(pod, c, vols, map[string]string{"POD": "p"})
	if err != nil {
		t.Fatal(err)
	}
	subTarget := filepath.Join(podDir, "volume-subpaths", "cfg", "c", "0")
	want := []containerruntime.Mount{
		{ContainerPath: "/etc/greeting", HostPath: subTarget, ReadOnly: true, Propagation: corev1.MountPropagationNone},
		{ContainerPath: "/data", HostPath: vols["disk"].HostPath, ReadOnly: true, Propagation: corev1.MountPropagationHostToContainer},
		{ContainerPath: "/per-pod", HostPath: filepath.Join(podDir, "volume-subpaths", "disk", "c", "2"), Propagation: corev1.MountPropagationNone},
	}
	for i := range want {
		if i >= len(mounts) || mounts[i] != want[i] {
			t.Errorf("mounts = %+v\nwant %+v", mounts, want)
			break
		}
	}
	if got := readFile(t, subTarget); got != "bonjour" {
		t.Errorf("subPath mount reads %q", got)
	}
	if info, err := os.Stat(filepath.Join(vols["disk"].HostPath, "p", "cache")); err != nil || !info.IsDir() {
		t.Errorf("subPathExpr directory not made: %v", err)
	}
	bad := &corev1.Container{Name: "bad", VolumeMounts: []corev1.VolumeMount{{Name: "disk", MountPath: "/x", SubPath: "escape/etc"}}}
	_, err = m.Mounts(pod, bad, vols, nil)
	if !errors.Is(err, ErrSubPathEscape) || !strings.Contains(err.Error(), `failed to prepare subPath for volumeMount "disk" of container "bad"`) {
		t.Errorf("escaping subPath: %v", err)
	}
	bidi := &corev1.Container{Name: "b", VolumeMounts: []corev1.VolumeMount{{Name: "disk", MountPath: "/x", MountPropagation: new(corev1.MountPropagationBidirectional)}}}
	if _, err := m.Mounts(pod, bidi, vols, nil); err == nil {
		t.Error("Bidirectional propagation: got no error")
	}

	// A missing key of items: an error naming the volume and the key.
	missing := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "m", Namespace: "default", UID: "uid-missing"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Items: []corev1.KeyToPath{{Key: "nope", Path: "nope"}},
		}}}}},
	}
	m.RegisterPod(ctx, missing)
	_, errs = m.SetUp(ctx, missing)
	if len(errs) != 1 || errs[0].Error() != `MountVolume.SetUp failed for volume "cfg" : configmap references non-existent config key: nope` {
		t.Errorf("missing key: %v", errs)
	}
	if !rec.find("FailedMount", "non-existent config key: nope") {
		t.Error("no FailedMount Event for the missing key")
	}
	if err := m.TearDown(missing.UID); err != nil {
		t.Fatal(err)
	}

	// Tear down: nothing mounted under the pod's directory and no volume
	// directories left; the host's paths are untouched.
	if err := m.TearDown(pod.UID); err != nil {
		t.Fatal(err)
	}
	if left, err := mountinfo.Under(podDir); err != nil || len(left) > 0 {
		t.Errorf("mounts left: %q, %v", left, err)
	}
	for _, d := range []string{"volumes", "volume-subpaths"} {
		if _, err := os.Lstat(filepath.Join(podDir, d)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", d, err)
		}
	}
	for _, p := range []string{host, pvDir} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("host path %s: %v", p, err)
		}
	}
	// The watches of the pods' ConfigMaps and Secrets are stopped.
	m.configMaps.mu.Lock()
	n := len(m.configMaps.watches)
	m.configMaps.mu.Unlock()
	if n != 0 {
		t.Errorf("%d ConfigMap watches left after tear down", n)
	}
}

// TearDown works from the node's state alone, as after a restart: a pod
// the manager never saw, with tmpfs and subPath mounts.
func TestTearDownOrphan(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (tmpfs and bind mounts)")
	}
	root := t.TempDir()
	t.Cleanup(func() { _ = unmountAll(root) })
	m := New(Config{RootDir: root, Logger: zaptest.NewLogger(t)})
	podDir := m.PodDir("orphan")
	sec := filepath.Join(podDir, "volumes", kindSecret, "s")
	disk := filepath.Join(podDir, "volumes", kindEmptyDir, "d")
	for _, d := range []string{sec, disk} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := mountTmpfs(sec, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sec, "k"), []byte("v"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := bindSubPath(disk, "sub", filepath.Join(podDir, "volume-subpaths", "d", "c", "0")); err != nil {
		t.Fatal(err)
	}
	uids, err := m.PodDirs()
	if err != nil || len(uids) != 1 || uids[0] != "orphan" {
		t.Fatalf("PodDirs = %v, %v", uids, err)
	}
	if err := m.TearDown("orphan"); err != nil {
		t.Fatal(err)
	}
	if left, _ := mountinfo.Under(podDir); len(left) > 0 {
		t.Errorf("mounts left: %q", left)
	}
	if _, err := os.Lstat(filepath.Join(podDir, "volumes")); !os.IsNotExist(err) {
		t.Errorf("volumes left: %v", err)
	}
}

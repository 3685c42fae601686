package staticpods

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// TestMirrors runs the reconciler's passes against a real apiserver.
func TestMirrors(t *testing.T) {
	env := harness.Start(t)
	ctx := context.Background()
	pods := client.For[*corev1.Pod](env.Client)
	node, err := client.For[*corev1.Node](env.Client).Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	// An API pod on the node, which the reconciler must leave alone.
	if _, err := pods.Create(ctx, "default", &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "api-pod", Namespace: "default"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	manifest := filepath.Join(dir, "web.yaml")
	write(t, manifest, podYAML)
	src := NewSource(Config{Path: dir, NodeName: "n1", Sink: &recordingSink{running: map[string]*corev1.Pod{}}})
	src.Sync()
	nodePods := func() []*corev1.Pod {
		items, _, err := pods.List(ctx, "", metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.nodeName", "n1").String()})
		if err != nil {
			t.Fatalf("list pods: %v", err)
		}
		return items
	}
	m := NewMirrors(MirrorConfig{
		Client: env.Client, NodeName: "n1",
		Static: src.Pods, StaticSynced: src.Synced,
		Pods: nodePods, PodsSynced: func() bool { return true },
		Logger: zaptest.NewLogger(t),
	})
	sync := func() {
		t.Helper()
		if err := m.Sync(ctx); err != nil {
			t.Fatalf("Sync: %v", err)
		}
	}
	getMirror := func() *corev1.Pod {
		t.Helper()
		p, err := pods.Get(ctx, "default", "web-n1")
		if err != nil {
			t.Fatalf("get mirror: %v", err)
		}
		return p
	}

	// Created, owned by the node, with the hash.
	sync()
	static := src.Pods()[0]
	mirror := getMirror()
	if !IsMirror(mirror) || mirror.Annotations[ConfigMirrorAnnotation] != string(static.UID) || mirror.Spec.NodeName != "n1" {
		t.Fatalf("mirror annotations %v nodeName %q; want the mirror annotation %s", mirror.Annotations, mirror.Spec.NodeName, static.UID)
	}
	if refs := mirror.OwnerReferences; len(refs) != 1 || refs[0].Kind != "Node" || refs[0].UID != node.UID {
		t.Errorf("ownerReferences %+v; want the node %s", refs, node.UID)
	}

	// The static pod's status goes to the mirror.
	m.SetStatus(static, corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.7", HostIP: "192.0.2.1"})
	sync()
	if st := getMirror().Status; st.Phase != corev1.PodRunning || st.PodIP != "10.0.0.7" {
		t.Errorf("mirror status phase %q podIP %q; want Running, 10.0.0.7", st.Phase, st.PodIP)
	}

	// Deleted through the API (gracefully: it is bound): re-created, with
	// the status.
	if _, err := pods.Delete(ctx, "default", "web-n1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	sync()
	again := getMirror()
	if again.UID == mirror.UID || again.DeletionTimestamp != nil {
		t.Errorf("mirror after deletion: uid %s (was %s) deletionTimestamp %v; want a new one", again.UID, mirror.UID, again.DeletionTimestamp)
	}
	if again.Status.Phase != corev1.PodRunning {
		t.Errorf("re-created mirror phase %q, want Running", again.Status.Phase)
	}

	// A changed manifest: the stale mirror is replaced.
	write(t, manifest, podManifest("web", "7200"))
	src.Sync()
	sync()
	changed := getMirror()
	if changed.UID == again.UID || changed.Annotations[ConfigMirrorAnnotation] != string(src.Pods()[0].UID) {
		t.Errorf("mirror after the change: uid %s (was %s), hash %s; want a new one with %s",
			changed.UID, again.UID, changed.Annotations[ConfigMirrorAnnotation], src.Pods()[0].UID)
	}

	// The manifest gone: the mirror goes; the API pod stays.
	if err := os.Remove(manifest); err != nil {
		t.Fatal(err)
	}
	src.Sync()
	sync()
	if _, err := pods.Get(ctx, "default", "web-n1"); !apierrors.IsNotFound(err) {
		t.Errorf("mirror of a removed manifest: get error %v, want NotFound", err)
	}
	if _, err := pods.Get(ctx, "default", "api-pod"); err != nil {
		t.Errorf("API pod: %v", err)
	}
}

// TestMirrorsRunRetries checks Run keeps trying while the node is not
// registered, and creates the mirror once it is.
func TestMirrorsRunRetries(t *testing.T) {
	env := harness.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	pods := client.For[*corev1.Pod](env.Client)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "web.yaml"), podYAML)
	src := NewSource(Config{Path: dir, NodeName: "n2", Sink: &recordingSink{running: map[string]*corev1.Pod{}}})
	src.Sync()
	m := NewMirrors(MirrorConfig{
		Client: env.Client, NodeName: "n2", Static: src.Pods, StaticSynced: src.Synced,
		Pods: func() []*corev1.Pod { return nil }, PodsSynced: func() bool { return true },
		Logger: zaptest.NewLogger(t),
	})
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	if err := m.Sync(ctx); err == nil {
		t.Fatal("Sync without the node: no error")
	}
	if _, err := client.For[*corev1.Node](env.Client).Create(ctx, "", &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		p, err := pods.Get(ctx, "default", "web-n2")
		if err == nil && IsMirror(p) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mirror pod 20 s after the node registered (last error %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

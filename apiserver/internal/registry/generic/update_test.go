package generic_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/pkg/harness"
)

// GuaranteedUpdate starts from the watch cache's copy. A copy made stale
// by a write the cache has not seen yet must not lose that write, and a
// precondition on a resourceVersion newer than the cache's copy must not
// fail with a false Conflict.
func TestGuaranteedUpdateFromStaleCache(t *testing.T) {
	env := harness.Start(t)
	store, _ := env.Server.Registry.Store(corev1.SchemeGroupVersion.WithResource("pods"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Labels: map[string]string{"a": "1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	if _, err := store.Create(ctx, "default", pod, false); err != nil {
		t.Fatal(err)
	}
	// Wait until the cache holds the pod, so the first attempt uses it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := store.Get(ctx, "default", "p", "0"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pod never reached the watch cache")
		}
		time.Sleep(10 * time.Millisecond) // polling the cache; the deadline decides
	}

	calls := 0
	out, err := store.GuaranteedUpdate(ctx, "default", "p", generic.MainUpdate, false, func(cur runtime.Object) (runtime.Object, error) {
		calls++
		if calls == 1 {
			// Another writer gets in between the (cached) read and our write.
			other := cur.DeepCopyObject().(*corev1.Pod)
			other.Labels["b"] = "2"
			other.ResourceVersion = ""
			if _, err := store.Update(ctx, "default", "p", other, false); err != nil {
				t.Errorf("concurrent update: %v", err)
			}
		}
		p := cur.(*corev1.Pod)
		p.Labels["c"] = "3"
		return p, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if got.Labels["b"] != "2" || got.Labels["c"] != "3" {
		t.Fatalf("labels %v: want the concurrent write (b=2) and ours (c=3)", got.Labels)
	}
	if calls < 2 {
		t.Fatalf("update function ran %d times; the stale first attempt must be retried", calls)
	}

	// A precondition on the newest resourceVersion holds even while the
	// cache may still show an older one.
	fresh, err := store.Get(ctx, "default", "p", "")
	if err != nil {
		t.Fatal(err)
	}
	upd := fresh.DeepCopyObject().(*corev1.Pod)
	upd.Labels["d"] = "4"
	if _, err := store.Update(ctx, "default", "p", upd, false); err != nil {
		t.Fatalf("update with the current resourceVersion: %v", err)
	}
	// And a stale one is still a Conflict.
	stale := fresh.DeepCopyObject().(*corev1.Pod)
	stale.Labels["e"] = "5"
	if _, err := store.Update(ctx, "default", "p", stale, false); !apierrors.IsConflict(err) {
		t.Fatalf("update with an old resourceVersion: %v, want Conflict", err)
	}
}

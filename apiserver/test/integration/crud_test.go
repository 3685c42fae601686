package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func statusOf(err error) metav1.Status {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		return se.ErrStatus
	}
	return metav1.Status{}
}

func TestCRUD(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)

	created, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"app": "x"}}, Data: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.UID == "" || created.ResourceVersion == "" || created.CreationTimestamp.IsZero() {
		t.Fatalf("create did not set uid/resourceVersion/creationTimestamp: %+v", created.ObjectMeta)
	}
	got, err := cms.Get(ctx, "default", "a")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Data["k"] != "v" || got.ResourceVersion != created.ResourceVersion {
		t.Fatalf("get = %v rv %s, want data k=v rv %s", got.Data, got.ResourceVersion, created.ResourceVersion)
	}

	_, err = cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}})
	if !apierrors.IsAlreadyExists(err) || statusOf(err).Code != 409 {
		t.Fatalf("second create: got %v, want 409 AlreadyExists", err)
	}
	if _, err := cms.Get(ctx, "default", "missing"); !apierrors.IsNotFound(err) {
		t.Fatalf("get missing: got %v, want NotFound", err)
	}

	// Update with the current resourceVersion wins; with a stale one conflicts.
	got.Data["k"] = "v2"
	updated, err := cms.Update(ctx, "default", got)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.ResourceVersion == got.ResourceVersion {
		t.Fatalf("update kept resourceVersion %s", updated.ResourceVersion)
	}
	got.Data["k"] = "stale"
	if _, err := cms.Update(ctx, "default", got); !apierrors.IsConflict(err) {
		t.Fatalf("stale update: got %v, want Conflict", err)
	}

	// Patches.
	p, err := cms.Patch(ctx, "default", "a", types.MergePatchType, []byte(`{"data":{"m":"merge"}}`))
	if err != nil || p.Data["m"] != "merge" || p.Data["k"] != "v2" {
		t.Fatalf("merge patch: %v %v", p, err)
	}
	p, err = cms.Patch(ctx, "default", "a", types.StrategicMergePatchType, []byte(`{"data":{"s":"smp"}}`))
	if err != nil || p.Data["s"] != "smp" {
		t.Fatalf("strategic merge patch: %v %v", p, err)
	}
	p, err = cms.Patch(ctx, "default", "a", types.JSONPatchType, []byte(`[{"op":"remove","path":"/data/m"}]`))
	if err != nil || p.Data["m"] != "" {
		t.Fatalf("json patch: %v %v", p, err)
	}
	if _, err := cms.Patch(ctx, "default", "a", types.MergePatchType, []byte(`{not json`)); !apierrors.IsBadRequest(err) {
		t.Fatalf("malformed patch: got %v, want BadRequest", err)
	}

	// Label-selected list.
	if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b", Labels: map[string]string{"app": "y"}}}); err != nil {
		t.Fatal(err)
	}
	items, lm, err := cms.List(ctx, "default", metav1.ListOptions{LabelSelector: "app=x"})
	if err != nil || len(items) != 1 || items[0].Name != "a" || lm.ResourceVersion == "" {
		t.Fatalf("list app=x: %d items, rv %q, err %v; want [a]", len(items), lm.ResourceVersion, err)
	}
	if _, _, err := cms.List(ctx, "default", metav1.ListOptions{LabelSelector: "app in (x"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("bad label selector: got %v, want BadRequest", err)
	}
	if _, _, err := cms.List(ctx, "default", metav1.ListOptions{FieldSelector: "spec.bogus=1"}); !apierrors.IsBadRequest(err) {
		t.Fatalf("unsupported field selector: got %v, want BadRequest", err)
	}

	// Delete with a failing precondition, then for real.
	wrong := types.UID("nope")
	if _, err := cms.Delete(ctx, "default", "a", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &wrong}}); !apierrors.IsConflict(err) {
		t.Fatalf("delete with wrong uid: got %v, want Conflict", err)
	}
	finished, err := cms.Delete(ctx, "default", "a", metav1.DeleteOptions{})
	if err != nil || !finished {
		t.Fatalf("delete: finished=%v err=%v", finished, err)
	}
	if _, err := cms.Get(ctx, "default", "a"); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	pods := client.For[*corev1.Pod](env.Client)

	tests := []struct {
		name      string
		do        func() error
		code      int32
		wantField string
	}{
		{"invalid name", func() error {
			_, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "Bad_Name"}})
			return err
		}, 422, "metadata.name"},
		{"invalid label", func() error {
			_, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "ok", Labels: map[string]string{"a": "not valid!"}}})
			return err
		}, 422, "metadata.labels"},
		{"missing containers", func() error {
			_, err := pods.Create(ctx, "default", &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}})
			return err
		}, 422, "spec.containers"},
		{"missing namespace", func() error {
			_, err := cms.Create(ctx, "nowhere", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}})
			return err
		}, 404, ""},
		{"too large", func() error {
			_, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "big"}, Data: map[string]string{"k": strings.Repeat("x", 3<<20+1)}})
			return err
		}, 413, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			st := statusOf(err)
			if st.Code != tc.code {
				t.Fatalf("code = %d (%v), want %d", st.Code, err, tc.code)
			}
			if tc.wantField != "" {
				found := false
				if st.Details != nil {
					for _, c := range st.Details.Causes {
						if strings.HasPrefix(c.Field, tc.wantField) {
							found = true
						}
					}
				}
				if !found {
					t.Fatalf("causes %+v do not name field %s", st.Details, tc.wantField)
				}
			}
		})
	}
	// Nothing was written.
	items, _, err := cms.List(ctx, "default", metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range items {
		if cm.Name == "ok" || cm.Name == "big" || cm.Name == "Bad_Name" {
			t.Fatalf("refused object %s was stored", cm.Name)
		}
	}
}

// 50 concurrent read-modify-write updaters of one object lose no update.
func TestOptimisticConcurrency(t *testing.T) {
	env := harness.Start(t)
	ctx := ctxT(t)
	cms := client.For[*corev1.ConfigMap](env.Client)
	if _, err := cms.Create(ctx, "default", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "counter"}, Data: map[string]string{"n": "0"}}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 50, 4
	var wg sync.WaitGroup
	var conflicts sync.Map
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				for {
					cm, err := cms.Get(ctx, "default", "counter")
					if err != nil {
						errc <- err
						return
					}
					var n int
					fmt.Sscanf(cm.Data["n"], "%d", &n)
					cm.Data["n"] = fmt.Sprint(n + 1)
					_, err = cms.Update(ctx, "default", cm)
					if apierrors.IsConflict(err) {
						conflicts.Store(w, true)
						continue
					}
					if err != nil {
						errc <- err
						return
					}
					break
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatalf("updater: %v", err)
	}
	cm, err := cms.Get(ctx, "default", "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(workers * each); cm.Data["n"] != want {
		t.Fatalf("counter = %s, want %s (lost updates)", cm.Data["n"], want)
	}
	n := 0
	conflicts.Range(func(any, any) bool { n++; return true })
	if n == 0 {
		t.Fatalf("no updater ever saw a conflict: the test did not exercise concurrency")
	}
}

package generic_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/pkg/harness"
)

// FuzzCreate sends arbitrary pods through the registry's create path on a
// real etcd: the result is the stored object or a Status error in the
// client-error range, and a refused pod is never stored.
func FuzzCreate(f *testing.F) {
	env := harness.Start(f)
	store, _ := env.Server.Registry.Store(corev1.SchemeGroupVersion.WithResource("pods"))
	f.Add([]byte(`{"metadata":{"name":"ok"},"spec":{"containers":[{"name":"c","image":"busybox"}]}}`))
	f.Add([]byte(`{"metadata":{"generateName":"g-"},"spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80}]}]}}`))
	f.Add([]byte(`{"metadata":{"name":"Bad"},"spec":{}}`))
	f.Add([]byte(`{"metadata":{"name":"x","labels":{"k":"v v"}},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"1"},"requests":{"cpu":"2"}}}]}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var pod corev1.Pod
		if err := json.Unmarshal(raw, &pod); err != nil {
			return
		}
		pod.Namespace = ""
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := store.Create(ctx, "default", pod.DeepCopy(), false)
		if err != nil {
			var se *apierrors.StatusError
			if !errors.As(err, &se) || se.ErrStatus.Code < 400 || se.ErrStatus.Code >= 500 {
				t.Fatalf("create gave %v, want a 4xx Status", err)
			}
			if pod.Name != "" {
				if _, gerr := store.Get(ctx, "default", pod.Name, ""); gerr == nil && !apierrors.IsAlreadyExists(err) {
					t.Fatalf("refused pod %q was stored", pod.Name)
				}
			}
			return
		}
		got := out.(*corev1.Pod)
		if _, _, err := store.Delete(ctx, "default", got.Name, nil); err != nil {
			t.Fatalf("delete created pod: %v", err)
		}
	})
}

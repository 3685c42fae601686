package integration

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/harness"
)

// An acknowledged create survives kill -9 of the apiserver (and its
// embedded etcd) and a restart on the same data dir.
func TestCreateSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kube-apiserver binary")
	}
	bin := harness.BuildBinary(t, "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver")
	dir := t.TempDir()
	port, etcdPort := harness.FreePort(t), harness.FreePort(t)
	args := []string{"--data-dir", dir, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		"--embedded-etcd-port", strconv.Itoa(etcdPort), "--log-level", "warn"}
	ctx := ctxT(t)

	p := harness.StartProcess(t, bin, args...)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "durable"}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	created := createWhenUp(ctx, t, filepath.Join(dir, "admin.kubeconfig"), pod)

	p.Kill()

	harness.StartProcess(t, bin, args...)
	c := dialWhenUp(ctx, t, filepath.Join(dir, "admin.kubeconfig"))
	pods := client.For[*corev1.Pod](c)
	var got *corev1.Pod
	deadline := time.Now().Add(60 * time.Second)
	for {
		var err error
		got, err = pods.Get(ctx, "default", "durable")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("get after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got.UID != created.UID || got.ResourceVersion != created.ResourceVersion {
		t.Fatalf("after kill -9 got uid %s rv %s, want uid %s rv %s", got.UID, got.ResourceVersion, created.UID, created.ResourceVersion)
	}
}

func dialWhenUp(ctx context.Context, t *testing.T, kubeconfig string) *client.Client {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(kubeconfig); err == nil {
			c, err := client.NewFromFile(kubeconfig)
			if err == nil {
				t.Cleanup(func() { _ = c.Close() })
				return c
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("apiserver kubeconfig %s not usable within 60s", kubeconfig)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func createWhenUp(ctx context.Context, t *testing.T, kubeconfig string, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	c := dialWhenUp(ctx, t, kubeconfig)
	pods := client.For[*corev1.Pod](c)
	deadline := time.Now().Add(60 * time.Second)
	for {
		created, err := pods.Create(ctx, "default", pod.DeepCopy())
		if err == nil {
			return created
		}
		if time.Now().After(deadline) {
			t.Fatalf("create on a fresh apiserver: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

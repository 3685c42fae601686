package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/pkg/client"
)

// APIServer is a kube-apiserver process with its embedded etcd, for the
// components' benchmarks.
type APIServer struct {
	*Process
	// Kubeconfig is the admin kubeconfig it wrote; the other components'
	// kubeconfigs are next to it.
	Kubeconfig string
	// Clients are the benchmark's own connections.
	Clients []*client.Client
}

// StartAPIServer runs bin on a fresh data dir under dir (embedded etcd,
// free loopback ports, no compaction), waits until it takes a create, and
// opens nClients connections.
func StartAPIServer(ctx context.Context, bin, dir string, nClients int) (_ *APIServer, err error) {
	p, err := StartProcess("kube-apiserver", bin, filepath.Join(dir, "kube-apiserver.log"),
		"--data-dir", filepath.Join(dir, "apiserver"), "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--embedded-etcd-port", "0", "--log-level", "warn", "--etcd-compaction-interval", "0")
	if err != nil {
		return nil, err
	}
	a := &APIServer{Process: p, Kubeconfig: filepath.Join(dir, "apiserver", "admin.kubeconfig")}
	defer func() {
		if err != nil {
			a.Close(func(string, ...any) {})
		}
	}()
	deadline := time.Now().Add(90 * time.Second)
	var last error = errors.New("admin.kubeconfig not written yet")
	for {
		if err := p.Alive(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("kube-apiserver not ready within 90s: %w\n%s", last, p.LogTail())
		}
		if _, err := os.Stat(a.Kubeconfig); err == nil {
			if last = tryCreate(ctx, a.Kubeconfig); last == nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond): // polling readiness; the deadline decides
		}
	}
	for range nClients {
		c, err := client.NewFromFile(a.Kubeconfig)
		if err != nil {
			return nil, err
		}
		a.Clients = append(a.Clients, c)
	}
	return a, nil
}

// Close closes the clients and stops the process.
func (a *APIServer) Close(logf func(string, ...any)) {
	for _, c := range a.Clients {
		_ = c.Close()
	}
	a.Stop(15*time.Second, logf)
}

func tryCreate(ctx context.Context, kubeconfig string) error {
	c, err := client.NewFromFile(kubeconfig)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bench-ready"}}
	if _, err := client.For[*corev1.ConfigMap](c).Create(ctx, metav1.NamespaceDefault, cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// Parallel runs op(i) for i in [0, n) from conc workers spread over
// clients, each op bounded by 30 s; it returns the number of failures and
// the first one.
func Parallel(ctx context.Context, clients []*client.Client, n, conc int, op func(ctx context.Context, c *client.Client, i int) error) (int, string) {
	var next, errs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := range conc {
		c := clients[w%len(clients)]
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				octx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := op(octx, c, i)
				cancel()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	first, _ := firstErr.Load().(string)
	return int(errs.Load()), first
}

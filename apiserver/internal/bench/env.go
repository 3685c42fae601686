package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/internal/storage/embedded"
	"github.com/coxswain/coxswain/pkg/benchkit"
	"github.com/coxswain/coxswain/pkg/client"
)

const apiserverPackage = "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver"

// env is the system under test: an embedded etcd in this process and a
// kube-apiserver subprocess that stores in it.
type env struct {
	tmp        string
	etcd       *embedded.Etcd
	EtcdURL    string
	proc       *benchkit.Process
	Kubeconfig string
	// Binary says which kube-apiserver runs.
	Binary string
	logf   func(format string, args ...any)
}

// startEnv starts etcd, builds (unless given) and starts the apiserver,
// and waits until a gRPC create works. On error everything started is
// stopped again.
func startEnv(ctx context.Context, cfg *Config, logf func(string, ...any)) (_ *env, err error) {
	tmp, err := os.MkdirTemp("", "apiserver-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{tmp: tmp, logf: logf}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()

	bin := cfg.APIServerBin
	if bin == "" {
		if bin, e.Binary, err = benchkit.Binary(ctx, defaultBin, apiserverPackage, tmp, logf); err != nil {
			return nil, err
		}
	} else {
		e.Binary = "`" + bin + "`"
	}
	logf("apiserver binary: %s", bin)

	etcdDir := filepath.Join(tmp, "etcd")
	e.etcd, err = embedded.Start(etcdDir, 0, zap.NewNop())
	if err != nil {
		return nil, err
	}
	e.EtcdURL = e.etcd.ClientURL
	logf("etcd: %s (data in %s)", e.EtcdURL, etcdDir)

	dataDir := filepath.Join(tmp, "apiserver")
	// --secure-port 0: the apiserver picks a free port and writes it into
	// admin.kubeconfig, so no other process can take it in between.
	e.proc, err = benchkit.StartProcess("kube-apiserver", bin, filepath.Join(tmp, "kube-apiserver.log"),
		"--etcd-servers", e.EtcdURL, "--data-dir", dataDir,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--log-level", "warn", "--etcd-compaction-interval", "0")
	if err != nil {
		return nil, err
	}
	logf("kube-apiserver pid %d (log %s)", e.proc.PID(), e.proc.LogPath())

	e.Kubeconfig = filepath.Join(dataDir, "admin.kubeconfig")
	if err := e.waitReady(ctx, 90*time.Second); err != nil {
		return nil, err
	}
	return e, nil
}

// defaultBin is where `make build` puts the apiserver.
const defaultBin = "_output/bin/kube-apiserver"

func (e *env) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error = errors.New("admin.kubeconfig not written yet")
	for {
		if err := e.proc.Alive(); err != nil {
			return fmt.Errorf("during start-up: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready within %v: %v\n%s", timeout, last, e.proc.LogTail())
		}
		if _, err := os.Stat(e.Kubeconfig); err == nil {
			last = e.tryCreate(ctx)
			if last == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) tryCreate(ctx context.Context) error {
	c, err := client.NewFromFile(e.Kubeconfig)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bench-ready"}, Data: map[string]string{"ready": "true"}}
	_, err = client.For[*corev1.ConfigMap](c).Create(ctx, metav1.NamespaceDefault, cm)
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// PID is the apiserver's process id.
func (e *env) PID() int { return e.proc.PID() }

// Alive reports an error when the apiserver has exited.
func (e *env) Alive() error { return e.proc.Alive() }

// NewClient dials the apiserver over gRPC as admin.
func (e *env) NewClient() (*client.Client, error) { return client.NewFromFile(e.Kubeconfig) }

// NewEtcdClient dials the etcd directly.
func (e *env) NewEtcdClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints: []string{e.EtcdURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
		MaxCallSendMsgSize: 8 << 20, MaxCallRecvMsgSize: 1 << 30,
	})
}

// Close stops the apiserver (SIGTERM, then SIGKILL, by its pid only) and
// etcd, and removes the temporary directory.
func (e *env) Close() {
	if e.proc != nil {
		e.proc.Stop(15*time.Second, e.logf)
	}
	if e.etcd != nil {
		e.etcd.Close()
	}
	if e.tmp != "" {
		if err := os.RemoveAll(e.tmp); err != nil {
			e.logf("remove %s: %v", e.tmp, err)
		}
	}
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/apiserver/internal/storage/embedded"
	"github.com/coxswain/coxswain/pkg/client"
)

const apiserverPackage = "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver"

// env is the system under test: an embedded etcd in this process and a
// kube-apiserver subprocess that stores in it.
type env struct {
	tmp        string
	etcd       *embedded.Etcd
	EtcdURL    string
	cmd        *exec.Cmd
	exited     chan struct{}
	waitErr    error
	logPath    string
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
	e := &env{tmp: tmp, logf: logf, logPath: filepath.Join(tmp, "kube-apiserver.log")}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()

	bin := cfg.APIServerBin
	if bin == "" {
		if _, statErr := os.Stat(defaultBin); statErr == nil {
			bin = defaultBin
		} else {
			bin = filepath.Join(tmp, "kube-apiserver")
			logf("building %s", apiserverPackage)
			build := exec.CommandContext(ctx, "go", "build", "-o", bin, apiserverPackage)
			if out, err := build.CombinedOutput(); err != nil {
				return nil, fmt.Errorf("go build %s: %w\n%s", apiserverPackage, err, out)
			}
		}
	}
	e.Binary = "`" + bin + "`"
	if strings.HasPrefix(bin, tmp) {
		e.Binary = "built from the working tree by the benchmark"
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
	logFile, err := os.Create(e.logPath)
	if err != nil {
		return nil, err
	}
	defer func() { _ = logFile.Close() }() // the child holds its own descriptor
	// --secure-port 0: the apiserver picks a free port and writes it into
	// admin.kubeconfig, so no other process can take it in between.
	e.cmd = exec.Command(bin,
		"--etcd-servers", e.EtcdURL, "--data-dir", dataDir,
		"--bind-address", "127.0.0.1", "--secure-port", "0",
		"--log-level", "warn", "--etcd-compaction-interval", "0")
	e.cmd.Stdout, e.cmd.Stderr = logFile, logFile
	// The apiserver must not outlive the benchmark, even if it is killed.
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	e.exited = make(chan struct{})
	go func() {
		e.waitErr = e.cmd.Wait()
		close(e.exited)
	}()
	logf("kube-apiserver pid %d (log %s)", e.cmd.Process.Pid, e.logPath)

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
		select {
		case <-e.exited:
			return fmt.Errorf("kube-apiserver exited during start-up (%v):\n%s", e.waitErr, e.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready within %v: %v\n%s", timeout, last, e.logTail())
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
func (e *env) PID() int { return e.cmd.Process.Pid }

// Alive reports an error when the apiserver has exited.
func (e *env) Alive() error {
	select {
	case <-e.exited:
		return fmt.Errorf("kube-apiserver exited (%v):\n%s", e.waitErr, e.logTail())
	default:
		return nil
	}
}

// NewClient dials the apiserver over gRPC as admin.
func (e *env) NewClient() (*client.Client, error) { return client.NewFromFile(e.Kubeconfig) }

// NewEtcdClient dials the etcd directly.
func (e *env) NewEtcdClient() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints: []string{e.EtcdURL}, DialTimeout: 10 * time.Second, Logger: zap.NewNop(),
		MaxCallSendMsgSize: 8 << 20, MaxCallRecvMsgSize: 1 << 30,
	})
}

func (e *env) logTail() string {
	b, err := os.ReadFile(e.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// Close stops the apiserver (SIGTERM, then SIGKILL, by its pid only) and
// etcd, and removes the temporary directory.
func (e *env) Close() {
	if e.cmd != nil && e.cmd.Process != nil && e.exited != nil {
		select {
		case <-e.exited:
		default:
			_ = e.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-e.exited:
			case <-time.After(15 * time.Second):
				e.logf("kube-apiserver pid %d did not stop on SIGTERM; killing it", e.cmd.Process.Pid)
				_ = e.cmd.Process.Kill()
				<-e.exited
			}
		}
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

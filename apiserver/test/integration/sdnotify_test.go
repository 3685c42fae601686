package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/coxswain/coxswain/pkg/harness"
	"github.com/coxswain/coxswain/pkg/sdnotify"
)

// Under systemd (Type=notify) the kube-apiserver binary sends READY=1 once
// /readyz answers ok, and STOPPING=1 when SIGTERM starts its shutdown.
func TestSystemdNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the kube-apiserver binary")
	}
	bin := harness.BuildBinary(t, "github.com/coxswain/coxswain/apiserver/cmd/kube-apiserver")
	dir := t.TempDir()
	l, err := sdnotify.Listen(filepath.Join(dir, "notify.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	t.Setenv(sdnotify.EnvSocket, l.Socket)
	port, etcdPort := harness.FreePort(t), harness.FreePort(t)
	p := harness.StartProcess(t, bin, "--data-dir", dir, "--bind-address", "127.0.0.1", "--secure-port", strconv.Itoa(port),
		"--embedded-etcd-port", strconv.Itoa(etcdPort), "--log-level", "warn")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	seen, err := l.WaitFor(ctx, sdnotify.Ready)
	if err != nil {
		t.Fatalf("no READY=1 from kube-apiserver: %v", err)
	}
	if len(seen) != 1 {
		t.Errorf("states before READY=1: %q, want only READY=1", seen)
	}
	// Ready means ready: /readyz answers ok at once, without retries.
	if code, body := readyz(t, dir, port); code != http.StatusOK {
		t.Fatalf("after READY=1 /readyz answered %d %q, want 200", code, body)
	}

	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitFor(ctx, sdnotify.Stopping); err != nil {
		t.Fatalf("no STOPPING=1 after SIGTERM: %v", err)
	}
	select {
	case <-p.Exited():
	case <-ctx.Done():
		t.Fatal("kube-apiserver still runs 60s after SIGTERM")
	}
}

func readyz(t *testing.T, dataDir string, port int) (int, string) {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join(dataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate in pki/ca.crt")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	return resp.StatusCode, string(buf[:n])
}

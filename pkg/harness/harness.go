// Package harness starts a real kube-apiserver, on a real embedded etcd, in
// the test's process: a temporary data dir, free loopback ports, and a
// client with the admin credentials; everything stops in t.Cleanup.
package harness

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/coxswain/coxswain/apiserver/app"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
)

// Env is a running apiserver.
type Env struct {
	Server     *app.Server
	Options    *app.Options
	Kubeconfig string
	Client     *client.Client
}

// Option adjusts the apiserver's options.
type Option func(*app.Options)

// WithWatchCacheSize sets the watch window.
func WithWatchCacheSize(n int) Option { return func(o *app.Options) { o.WatchCacheSize = n } }

// WithServiceRange sets the Service ClusterIP range.
func WithServiceRange(cidr string) Option {
	return func(o *app.Options) { o.ServiceClusterIPRange = cidr }
}

// WithDataDir uses dir (for restart tests) instead of a fresh temp dir.
func WithDataDir(dir string) Option { return func(o *app.Options) { o.DataDir = dir } }

// Start runs an apiserver for the test.
func Start(t testing.TB, opts ...Option) *Env {
	t.Helper()
	o := app.NewOptions()
	o.DataDir = t.TempDir()
	o.BindAddress = "127.0.0.1"
	o.SecurePort = 0
	o.EmbeddedEtcdPort = 0
	o.EtcdCompactionInterval = 0
	o.ShutdownGracePeriod = 2 * time.Second
	for _, opt := range opts {
		opt(o)
	}
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	s, err := app.Start(ctx, o, logger)
	if err != nil {
		cancel()
		t.Fatalf("start apiserver: %v", err)
	}
	c, err := client.NewFromFile(s.AdminKubeconfig)
	if err != nil {
		cancel()
		_ = s.Wait()
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		cancel()
		if err := s.Wait(); err != nil {
			t.Logf("apiserver stopped: %v", err)
		}
	})
	return &Env{Server: s, Options: o, Kubeconfig: s.AdminKubeconfig, Client: c}
}

// NewClient returns another admin client (its own connection).
func (e *Env) NewClient(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewFromFile(e.Kubeconfig)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// AnonymousTLS is a TLS config that trusts the apiserver's CA and presents
// no client certificate, so a request authenticates by its bearer token
// alone.
func (e *Env) AnonymousTLS(t testing.TB) *tls.Config {
	t.Helper()
	cfg, err := kubeconfig.Load(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := cfg.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	tc = tc.Clone()
	tc.Certificates, tc.GetClientCertificate = nil, nil
	return tc
}

// Package embedded runs an etcd server inside the apiserver process, for a
// cluster with no external etcd.
package embedded

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Etcd is a running embedded etcd.
type Etcd struct {
	e *embed.Etcd
	// ClientURL is where clients reach it.
	ClientURL string
}

// Start starts etcd with its data in dir, serving clients on
// 127.0.0.1:clientPort (0 picks a free port) and peers on a free loopback
// port, and waits until it is ready.
func Start(dir string, clientPort int, logger *zap.Logger) (*Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Name = "coxswain"
	cu, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", clientPort))
	pu, _ := url.Parse("http://127.0.0.1:0")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClusterState = embed.ClusterStateFlagNew
	cfg.QuotaBackendBytes = 8 << 30
	cfg.MaxRequestBytes = 4 << 20
	cfg.MaxTxnOps = 1024
	cfg.Logger = "zap"
	if logger != nil {
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(logger.Named("etcd").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
	} else {
		cfg.LogLevel = "error"
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s did not become ready within 60s", dir)
	}
	return &Etcd{e: e, ClientURL: "http://" + e.Clients[0].Addr().String()}, nil
}

// Close stops etcd.
func (e *Etcd) Close() { e.e.Close() }

// Err reports a fatal error of the running server.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"

	"github.com/coxswain/coxswain/apiserver/internal/authn"
	"github.com/coxswain/coxswain/apiserver/internal/authz"
	"github.com/coxswain/coxswain/apiserver/internal/fieldmanager"
	"github.com/coxswain/coxswain/apiserver/internal/grpcapi"
	"github.com/coxswain/coxswain/apiserver/internal/metrics"
	"github.com/coxswain/coxswain/apiserver/internal/pki"
	"github.com/coxswain/coxswain/apiserver/internal/registry"
	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
	"github.com/coxswain/coxswain/apiserver/internal/rest"
	"github.com/coxswain/coxswain/apiserver/internal/rest/openapi"
	"github.com/coxswain/coxswain/apiserver/internal/server"
	"github.com/coxswain/coxswain/apiserver/internal/storage/embedded"
	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/sdnotify"
	resourcev1 "github.com/coxswain/coxswain/proto/resource/v1"
)

// NewCommand returns the kube-apiserver command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "kube-apiserver",
		Short: "Coxswain's Kubernetes API server: gRPC list-watch and the Kubernetes REST API on etcd",
		Long: `kube-apiserver stores the cluster's objects in etcd (embedded unless --etcd-servers is given)
and serves them on one TLS port: the gRPC resource service the other components use, and the
Kubernetes HTTP API. With no certificates given it creates a CA under <data-dir>/pki and writes
<data-dir>/admin.kubeconfig and one kubeconfig each for the scheduler, the controller-manager,
kube-proxy and kubelets.`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The apiserver allocates per request and keeps a large,
				// long-lived cache: collect less often than Go's default.
				debug.SetGCPercent(200)
			}
			logger, err := logging.New(o.LogLevel)
			if err != nil {
				return err
			}
			defer func() { _ = logger.Sync() }()
			s, err := Start(cmd.Context(), o, logger)
			if err != nil {
				return err
			}
			logger.Info("kube-apiserver serving", zap.String("address", s.Address), zap.String("kubeconfig", s.AdminKubeconfig))
			// systemd (Type=notify) learns the apiserver is up once /readyz
			// would answer ok.
			stop := sdnotify.New(logger.Named("sdnotify")).Start(cmd.Context(), func(context.Context) error { return s.Ready() })
			defer stop()
			return s.Wait()
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Server is a running kube-apiserver.
type Server struct {
	// Address is host:port of the TLS port.
	Address string
	// AdminKubeconfig is the path of the admin kubeconfig, when generated.
	AdminKubeconfig string
	// EtcdEndpoints are the etcd client URLs in use.
	EtcdEndpoints []string
	// Registry is exposed for in-process tests.
	Registry *registry.Registry

	ready  func() error
	cancel context.CancelFunc
	done   chan struct{}
	err    error
	once   sync.Once
}

// Wait blocks until the server has stopped and returns why.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Ready returns nil when /readyz would answer ok: etcd answers and every
// watch cache is ready.
func (s *Server) Ready() error { return s.ready() }

// Stop shuts the server down and waits for it.
func (s *Server) Stop() error {
	s.once.Do(s.cancel)
	return s.Wait()
}

// Start brings the apiserver up and returns once it serves; it stops when
// ctx is cancelled or Stop is called.
func Start(ctx context.Context, o *Options, logger *zap.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var cleanups []func()
	fail := func(err error) (*Server, error) {
		cancel()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		return nil, err
	}

	lis, err := net.Listen("tcp", net.JoinHostPort(o.BindAddress, strconv.Itoa(o.SecurePort)))
	if err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	cleanups = append(cleanups, func() { _ = lis.Close() })
	port := lis.Addr().(*net.TCPAddr).Port
	advertise := o.AdvertiseAddress
	if advertise == "" {
		advertise = o.BindAddress
		if ip := net.ParseIP(advertise); ip == nil || ip.IsUnspecified() {
			advertise = "127.0.0.1"
		}
	}
	serverURL := "https://" + net.JoinHostPort(advertise, strconv.Itoa(port))

	// Certificates.
	var generatedPKI *pki.Bundle
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ClientAuth: tls.RequestClientCert}
	var roots *x509.CertPool
	adminKubeconfig := ""
	if o.TLSCertFile == "" {
		firstIP, err := pki.FirstServiceIP(o.ServiceClusterIPRange)
		if err != nil {
			return fail(err)
		}
		hosts := []string{firstIP.String(), o.BindAddress, advertise}
		if h, err := os.Hostname(); err == nil {
			hosts = append(hosts, h)
		}
		b, err := pki.Ensure(filepath.Join(o.DataDir, "pki"), pki.Options{Hosts: hosts})
		if err != nil {
			return fail(fmt.Errorf("pki: %w", err))
		}
		generatedPKI = b
		if err := pki.WriteKubeconfigs(o.DataDir, serverURL, b); err != nil {
			return fail(fmt.Errorf("kubeconfigs: %w", err))
		}
		adminKubeconfig = filepath.Join(o.DataDir, "admin.kubeconfig")
		tc.Certificates = []tls.Certificate{b.Serving}
		roots = b.Pool
	} else {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSPrivateKeyFile)
		if err != nil {
			return fail(fmt.Errorf("serving certificate: %w", err))
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	// The apiserver's identity towards kubelets (pods/log). Kubelets serve
	// self-signed certificates, so, as upstream without
	// --kubelet-certificate-authority, their certificates are not verified.
	var kubeletCert *tls.Certificate
	if o.KubeletClientCertificate != "" {
		cert, err := tls.LoadX509KeyPair(o.KubeletClientCertificate, o.KubeletClientKey)
		if err != nil {
			return fail(fmt.Errorf("kubelet client certificate: %w", err))
		}
		kubeletCert = &cert
	} else if generatedPKI != nil {
		certPEM, keyPEM, err := generatedPKI.IssueClient("kube-apiserver-kubelet-client", []string{"system:masters"}, 0)
		if err != nil {
			return fail(fmt.Errorf("kubelet client certificate: %w", err))
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return fail(fmt.Errorf("kubelet client certificate: %w", err))
		}
		kubeletCert = &cert
	}
	var kubeletClient *http.Client
	if kubeletCert != nil {
		kubeletClient = &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{Certificates: []tls.Certificate{*kubeletCert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // kubelets serve self-signed certificates
			ForceAttemptHTTP2: true,
		}}
	}
	if o.ClientCAFile != "" {
		if roots, err = pki.LoadCA(o.ClientCAFile); err != nil {
			return fail(fmt.Errorf("client CA: %w", err))
		}
	}
	if roots == nil {
		return fail(errors.New("--client-ca-file is required with --tls-cert-file"))
	}

	// etcd.
	endpoints := o.EtcdServers
	if len(endpoints) == 0 {
		e, err := embedded.Start(filepath.Join(o.DataDir, "etcd"), o.EmbeddedEtcdPort, logger)
		if err != nil {
			return fail(err)
		}
		cleanups = append(cleanups, e.Close)
		endpoints = []string{e.ClientURL}
	}
	ec, err := clientv3.New(clientv3.Config{
		Endpoints: endpoints, DialTimeout: 10 * time.Second, Logger: logger.Named("etcd-client").WithOptions(zap.IncreaseLevel(zap.ErrorLevel)),
		MaxCallSendMsgSize: 8 << 20, MaxCallRecvMsgSize: 1 << 30,
	})
	if err != nil {
		return fail(fmt.Errorf("etcd client: %w", err))
	}
	cleanups = append(cleanups, func() { _ = ec.Close() })
	m := metrics.New()
	store := etcd.NewStore(ec, logger.Named("storage"), m.Etcd)
	pingCtx, pingCancel := context.WithTimeout(ctx, 30*time.Second)
	_, err = store.CurrentRevision(pingCtx)
	pingCancel()
	if err != nil {
		return fail(fmt.Errorf("reach etcd at %v: %w", endpoints, err))
	}

	admit, err := o.admissionChain()
	if err != nil {
		return fail(err)
	}
	reg, err := registry.New(store, registry.Options{
		ServiceCIDR: o.ServiceClusterIPRange, NodePortRange: o.ServiceNodePortRange,
		WatchWindowSize: o.WatchCacheSize, Admission: admit, Logger: logger.Named("registry"),
	})
	if err != nil {
		return fail(err)
	}
	reg.Start(ctx)
	cleanups = append(cleanups, reg.Stop)
	if err := reg.Bootstrap(ctx, port); err != nil {
		return fail(err)
	}

	issuer, tokens, err := o.serviceAccountTokens(reg)
	if err != nil {
		return fail(err)
	}
	api := &grpcapi.Server{
		Registry: reg, Authorizer: authz.AlwaysAllow{}, Metrics: m, Logger: logger.Named("grpc"), Roots: roots,
		Tokens: tokens, TokenRequests: issuer,
	}
	gs := grpc.NewServer(append(api.Options(), server.GRPCCredentials(), grpcapi.Codec())...)
	resourcev1.RegisterResourcesServer(gs, api)
	reflection.Register(gs)

	checks := server.Checks{
		Live: func() error { return nil },
		Ready: func() error {
			if !reg.Ready() {
				return errors.New("watch caches are not ready")
			}
			cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer ccancel()
			if _, err := store.CurrentRevision(cctx); err != nil {
				return fmt.Errorf("etcd: %w", err)
			}
			return nil
		},
	}
	openAPI, err := openapi.New(scheme.Resources(), server.Version.GitVersion)
	if err != nil {
		return fail(fmt.Errorf("openapi: %w", err))
	}
	fms, err := fieldmanager.New(openAPI.Schemas())
	if err != nil {
		return fail(err)
	}
	reg.Each(func(s *generic.Store) {
		s.Fields = &fieldmanager.Tracker{Managers: fms, GVK: s.Resource.GVK(), Default: s.Strategy}
	})
	restAPI := &rest.Handler{
		Registry: reg, Authorizer: authz.AlwaysAllow{}, Metrics: m, Logger: logger.Named("rest"), OpenAPI: openAPI, KubeletClient: kubeletClient,
		TokenRequests: issuer,
	}
	handler := server.HTTPHandler(&authn.Authenticator{Roots: roots, Tokens: tokens}, checks, m, restAPI)

	s := &Server{
		Address: lis.Addr().String(), AdminKubeconfig: adminKubeconfig, EtcdEndpoints: endpoints,
		Registry: reg, ready: checks.Ready, cancel: cancel, done: make(chan struct{}),
	}
	var wg sync.WaitGroup
	if o.EtcdCompactionInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runCompactor(ctx, store, o.EtcdCompactionInterval, logger.Named("compactor"))
		}()
	}
	go func() {
		err := server.Serve(ctx, lis, tc, gs, handler, o.ShutdownGracePeriod, logger.Named("server"))
		cancel()
		wg.Wait()
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		s.err = err
		close(s.done)
	}()
	return s, nil
}

// runCompactor compacts etcd every interval up to the revision seen one
// interval earlier, so watchers always have at least one interval of
// history.
func runCompactor(ctx context.Context, store *etcd.Store, interval time.Duration, logger *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rev, err := store.CurrentRevision(ctx)
		if err != nil {
			logger.Warn("read revision for compaction", zap.Error(err))
			continue
		}
		if last > 0 {
			if err := store.Compact(ctx, last); err != nil && !etcd.IsCompacted(err) {
				logger.Warn("compaction failed", zap.Int64("revision", last), zap.Error(err))
			} else {
				logger.Debug("compacted", zap.Int64("revision", last))
			}
		}
		last = rev
	}
}

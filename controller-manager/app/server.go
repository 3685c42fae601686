package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/events"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/leaderelection"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/sdnotify"
	"github.com/coxswain/coxswain/pkg/secureserving"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// NewCommand returns the kube-controller-manager command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "kube-controller-manager",
		Short: "Coxswain's controller manager: the reconcile loops that drive the cluster to its spec",
		Long: `kube-controller-manager runs the cluster's controllers in one process: each watches the
apiserver through shared informers and reconciles objects towards their spec (ReplicaSets keep
their pods, Deployments roll out ReplicaSets, Services get Endpoints and EndpointSlices,
terminating namespaces are emptied, every namespace has a default ServiceAccount, the garbage
collector deletes objects whose owners are gone, silent nodes are marked Unknown and tainted
unreachable and their pods evicted, the pod garbage collector removes the pods of deleted nodes
and old terminated pods, and, with --cluster-cidr, nodes get pod CIDRs).
With --leader-elect (the default) only the holder of the kube-system/kube-controller-manager
Lease runs them. /healthz, /livez, /readyz and /metrics are served over HTTPS on --secure-port
(a self-signed certificate unless --tls-cert-file is given).`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
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
			logger.Info("kube-controller-manager started", zap.String("address", s.Address))
			// systemd (Type=notify): started (a standby replica waiting
			// for the leader lease is started too).
			stop := sdnotify.New(logger.Named("sdnotify")).Start(cmd.Context(), nil)
			defer stop()
			return s.Wait()
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Server is a running kube-controller-manager.
type Server struct {
	// Address is host:port of the health and metrics endpoint.
	Address string

	ready  atomic.Bool
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Ready says whether the controllers run with synced caches (or, when
// another instance leads, whether this one stands by).
func (s *Server) Ready() bool { return s.ready.Load() }

// Wait blocks until the server has stopped and returns why.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Stop stops the server and waits for it.
func (s *Server) Stop() error {
	s.cancel()
	return s.Wait()
}

// Start connects to the apiserver, serves health and metrics, and runs the
// enabled controllers (under leader election when asked) until ctx is done
// or Stop is called.
func Start(ctx context.Context, o *Options, logger *zap.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	enabled, err := o.enabledControllers()
	if err != nil {
		return nil, err
	}
	c, err := client.NewFromFile(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("apiserver client: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics, err := workqueue.NewMetrics(reg)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	ln, err := o.Serving.Listen("kube-controller-manager", nil, nil)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("health and metrics port: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{Address: ln.Addr().String(), cancel: cancel, done: make(chan struct{})}

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "controllers not started", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	if o.Profiling {
		mux.HandleFunc("/debug/pprof/", secureserving.Profiling)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("health server failed", zap.Error(err))
		}
	})
	// One recorder, and so one event writer, for the whole process; it
	// outlives leadership terms and stops with ctx, before the client
	// closes.
	recorder := events.NewRecorder(c, "kube-controller-manager", "", logger.Named("events"))
	wg.Go(func() { recorder.Run(ctx) })
	cc := &controllerContext{client: c, options: o, logger: logger, metrics: metrics, recorder: recorder}
	run := func(ctx context.Context) error { return runControllers(ctx, cc, enabled, &s.ready) }

	go func() {
		defer close(s.done)
		var err error
		if o.LeaderElect {
			err = lead(ctx, o, c, logger, run, &s.ready)
		} else {
			err = run(ctx)
		}
		cancel()
		shutdownCtx, done := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.Shutdown(shutdownCtx)
		done()
		wg.Wait()
		_ = c.Close()
		s.err = err
	}()
	return s, nil
}

// lead runs the controllers while this instance holds the lease.
func lead(ctx context.Context, o *Options, c *client.Client, logger *zap.Logger, run func(context.Context) error, ready *atomic.Bool) error {
	host, _ := os.Hostname()
	id := host + "_" + uuid.NewString()
	ready.Store(true) // a standby is ready; the leader reports its caches
	var runErr error
	err := leaderelection.Run(ctx, leaderelection.Config{
		Client: c, Namespace: o.LeaderElectResourceNamespace, Name: o.LeaderElectResourceName, Identity: id,
		LeaseDuration: o.LeaderElectLeaseDuration, RenewDeadline: o.LeaderElectRenewDeadline, RetryPeriod: o.LeaderElectRetryPeriod,
		ReleaseOnCancel: true, Logger: logger,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(ctx context.Context) {
				ready.Store(false)
				runErr = run(ctx)
			},
			OnStoppedLeading: func() { logger.Info("leadership ended") },
			OnNewLeader:      func(holder string) { logger.Info("new leader", zap.String("holder", holder)) },
		},
	})
	return errors.Join(err, runErr)
}

// runControllers builds the enabled controllers over one informer factory,
// starts them and blocks until ctx is done and every one has stopped.
func runControllers(ctx context.Context, cc *controllerContext, enabled []string, ready *atomic.Bool) error {
	factory := informer.NewFactory(cc.client, cc.options.MinResyncPeriod, informer.WithLogger(cc.logger))
	cc = &controllerContext{client: cc.client, factory: factory, options: cc.options, logger: cc.logger, metrics: cc.metrics, recorder: cc.recorder}
	runs := make([]runFunc, 0, len(enabled))
	for _, name := range enabled {
		run, err := controllers[name](cc)
		if err != nil {
			return fmt.Errorf("controller %s: %w", name, err)
		}
		runs = append(runs, run)
	}
	cc.logger.Info("starting controllers", zap.Strings("controllers", enabled))
	factory.Start(ctx)
	var wg sync.WaitGroup
	for _, run := range runs {
		wg.Go(func() { run(ctx) })
	}
	synced := true
	for _, ok := range factory.WaitForCacheSync(ctx) {
		synced = synced && ok
	}
	ready.Store(synced)
	<-ctx.Done()
	wg.Wait()
	factory.Wait()
	return nil
}

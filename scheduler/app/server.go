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
	"github.com/coxswain/coxswain/pkg/leaderelection"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/sdnotify"
	"github.com/coxswain/coxswain/pkg/secureserving"
	"github.com/coxswain/coxswain/scheduler/internal/config"
	"github.com/coxswain/coxswain/scheduler/internal/scheduler"
)

// NewCommand returns the kube-scheduler command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "kube-scheduler",
		Short: "Coxswain's scheduler: binds pending pods to nodes",
		Long: `kube-scheduler watches nodes and the unscheduled pods whose spec.schedulerName is
--scheduler-name, picks a node for each through filter and score plugins (configurable with
--config, a KubeSchedulerConfiguration file) and binds the pod through pods/binding. With
--leader-elect, replicas elect one leader through a Lease in kube-system.

/healthz, /livez, /readyz and /metrics are served over HTTPS on --bind-address:--secure-port
(a self-signed certificate unless --tls-cert-file is given).`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.MarkSet(cmd.Flags())
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
			logger.Info("kube-scheduler serving health and metrics", zap.String("address", s.Address))
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

// Server is a running kube-scheduler.
type Server struct {
	// Address is host:port of the health and metrics endpoint.
	Address string

	cancel context.CancelFunc
	done   chan struct{}
	err    error
	leader atomic.Bool
	sched  *scheduler.Scheduler
}

// Wait blocks until the scheduler has stopped and returns why.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Stop stops the scheduler and waits for it.
func (s *Server) Stop() error {
	s.cancel()
	return s.Wait()
}

// IsLeader says whether this instance is scheduling (always, without
// leader election, once started).
func (s *Server) IsLeader() bool { return s.leader.Load() }

// Start connects to the apiserver and runs the scheduler (behind leader
// election if configured) until ctx is cancelled, Stop is called, or the
// lease is lost (Wait then returns an error).
func Start(ctx context.Context, o *Options, logger *zap.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	cfg, err := o.Complete()
	if err != nil {
		return nil, err
	}
	kubeconfig := o.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = cfg.ClientConnection.Kubeconfig
	}
	if kubeconfig == "" {
		return nil, errors.New("--kubeconfig is required")
	}
	c, err := client.NewFromFile(kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("apiserver client: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sched, err := scheduler.New(c, scheduler.Options{Config: cfg, Logger: logger.Named("scheduler"), Metrics: reg})
	if err != nil {
		_ = c.Close()
		return nil, err
	}

	lis, err := o.Serving.Listen("kube-scheduler", nil, nil)
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("health and metrics port: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &Server{Address: lis.Addr().String(), cancel: cancel, done: make(chan struct{}), sched: sched}
	leaderElect := cfg.LeaderElection.LeaderElect != nil && *cfg.LeaderElection.LeaderElect

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		// A standby replica is ready: it is waiting for the lease.
		if sched.Ready() || (leaderElect && !s.leader.Load()) {
			_, _ = w.Write([]byte("ok"))
			return
		}
		http.Error(w, "scheduler caches are not synced", http.StatusServiceUnavailable)
	})
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	if o.Profiling {
		mux.HandleFunc("/debug/pprof/", secureserving.Profiling)
	}
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("health server failed", zap.Error(err))
		}
	})
	go func() {
		var runErr error
		if leaderElect {
			runErr = runElected(ctx, c, cfg.LeaderElection, o, sched, s, logger)
		} else {
			s.leader.Store(true)
			runErr = sched.Run(ctx)
		}
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), o.ShutdownGracePeriod)
		_ = hs.Shutdown(sctx)
		scancel()
		wg.Wait()
		_ = c.Close()
		s.err = runErr
		close(s.done)
	}()
	return s, nil
}

func runElected(ctx context.Context, c *client.Client, le config.LeaderElection, o *Options, sched *scheduler.Scheduler, s *Server, logger *zap.Logger) error {
	host, _ := os.Hostname()
	var schedErr error
	err := leaderelection.Run(ctx, leaderelection.Config{
		Client:          c,
		Namespace:       le.ResourceNamespace,
		Name:            le.ResourceName,
		Identity:        host + "_" + uuid.NewString(),
		LeaseDuration:   le.LeaseDuration.Duration,
		RenewDeadline:   le.RenewDeadline.Duration,
		RetryPeriod:     le.RetryPeriod.Duration,
		ReleaseOnCancel: o.LeaderElectReleaseOnCancel,
		Logger:          logger,
		Callbacks: leaderelection.Callbacks{
			OnStartedLeading: func(lctx context.Context) {
				s.leader.Store(true)
				schedErr = sched.Run(lctx)
			},
			OnStoppedLeading: func() { s.leader.Store(false) },
		},
	})
	if err != nil {
		return fmt.Errorf("leader election: %w", err)
	}
	return schedErr
}

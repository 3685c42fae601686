package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/coxswain/coxswain/kube-proxy/internal/conntrack"
	"github.com/coxswain/coxswain/kube-proxy/internal/dns"
	"github.com/coxswain/coxswain/kube-proxy/internal/netif"
	"github.com/coxswain/coxswain/kube-proxy/internal/nsexec"
	"github.com/coxswain/coxswain/kube-proxy/internal/proxy/iptables"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/sdnotify"
)

// NewCommand returns the kube-proxy command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "kube-proxy",
		Short: "Coxswain's node proxy: Services through iptables and node-local DNS",
		Long: `kube-proxy watches Services, EndpointSlices and its own Node (--hostname-override) and
programs the node's nat and filter tables as upstream's iptables mode does (KUBE-SERVICES,
KUBE-SVC-*, KUBE-SEP-*, KUBE-NODEPORTS, KUBE-POSTROUTING), writing each sync in one
iptables-restore --noflush transaction: every chain at start and every --sync-period, otherwise
only the chains of the Services that changed (and a top-level chain only when its rules did). The jumps from the built-in chains are made once and
checked every minute with go-iptables; a restart rewrites the rules in place, so traffic keeps
flowing. It also serves node-local DNS for the cluster domain on --dns-bind, held by the
--dns-interface dummy interface, and deletes the conntrack entries of removed UDP endpoints.
--cleanup removes its rules, chains and interface, and exits.

From the Node it takes the addresses NodePorts answer on (with --nodeport-addresses primary),
the pod CIDR that makes traffic local (--detect-local-mode NodeCIDR, the default without
--cluster-cidr) and the zone label that topology hints of EndpointSlices refer to.

/healthz is served on --healthz-bind-address:--healthz-port, /metrics on
--metrics-bind-address:--metrics-port.`,
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
			if o.Cleanup {
				return Cleanup(cmd.Context(), o)
			}
			s, err := Start(cmd.Context(), o, logger)
			if err != nil {
				return err
			}
			logger.Info("kube-proxy running", zap.String("healthz", s.HealthzAddress), zap.String("metrics", s.MetricsAddress), zap.String("dns", s.DNSAddress))
			// systemd (Type=notify) learns kube-proxy is up once /healthz
			// answers ok, that is after its first rule sync.
			stop := sdnotify.New(logger.Named("sdnotify")).Start(cmd.Context(), sdnotify.HTTPCheckAddr(s.HealthzAddress, "/healthz"))
			defer stop()
			return s.Wait()
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Server is a running kube-proxy.
type Server struct {
	HealthzAddress, MetricsAddress, DNSAddress string
	Proxier                                    *iptables.Proxier

	cancel context.CancelFunc
	done   chan struct{}
}

// Wait blocks until the proxy has stopped.
func (s *Server) Wait() error {
	<-s.done
	return nil
}

// Stop stops the proxy (its rules stay, so traffic keeps flowing) and waits.
func (s *Server) Stop() error {
	s.cancel()
	return s.Wait()
}

// healthTimeout is how long a change may wait for a successful sync before /healthz fails.
func (o *Options) healthTimeout() time.Duration { return 2*o.SyncPeriod + o.MinSyncPeriod }

// Start connects to the apiserver and runs the proxy and the DNS server
// until ctx is cancelled or Stop is called.
func Start(ctx context.Context, o *Options, logger *zap.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	if o.Kubeconfig == "" {
		return nil, errors.New("--kubeconfig is required")
	}
	nodePortIPs, err := o.nodePortIPs()
	if err != nil {
		return nil, err
	}
	c, err := client.NewFromFile(o.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("apiserver client: %w", err)
	}
	var closers []func()
	fail := func(err error) (*Server, error) {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		_ = c.Close()
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	factory := informer.NewFactory(c, 0, informer.WithLogger(logger.Named("informer")))
	svcInf, svcLister := informer.ForType[*corev1.Service](factory)
	sliceInf, sliceLister := informer.ForType[*discoveryv1.EndpointSlice](factory)
	if err := svcInf.AddIndexers(dns.ServiceIndexers); err != nil {
		return fail(err)
	}
	if err := sliceInf.AddIndexers(dns.SliceIndexers); err != nil {
		return fail(err)
	}
	// Its own Node: addresses for NodePorts, pod CIDR for local traffic,
	// zone for topology hints.
	nodeName := o.nodeName()
	nodeFactory := informer.NewFactory(c, 0, informer.WithLogger(logger.Named("informer")),
		informer.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", nodeName).String()
		}))
	nodeInf, nodeLister := informer.ForType[*corev1.Node](nodeFactory)
	cfg := iptables.Config{
		NodeName:          nodeName,
		ClusterCIDR:       o.ClusterCIDR,
		MasqueradeAll:     o.MasqueradeAll,
		NodePortAddresses: nodePortIPs,
	}
	localFromNode := o.localMode() == localModeNodeCIDR
	if localFromNode {
		cfg.ClusterCIDR = ""
	}
	proxier := iptables.New(svcLister, sliceLister, iptables.Options{
		Conntrack:          &conntrack.Cleaner{NetNS: o.NetNS},
		Config:             cfg,
		NodePortsOnNodeIPs: o.nodePortsOnNodeIPs(),
		LocalFromNodeCIDR:  localFromNode,
		Runner:             o.runner(),
		MinSyncPeriod:      o.MinSyncPeriod,
		SyncPeriod:         o.SyncPeriod,
		Logger:             logger.Named("iptables"),
		Metrics:            reg,
	})
	if _, err := svcInf.AddEventHandler(proxier.Handler()); err != nil {
		return fail(err)
	}
	if _, err := sliceInf.AddEventHandler(proxier.Handler()); err != nil {
		return fail(err)
	}
	if _, err := nodeInf.AddEventHandler(proxier.NodeHandler()); err != nil {
		return fail(err)
	}

	s := &Server{Proxier: proxier, done: make(chan struct{})}
	if o.DNSBind != "" {
		if err := o.ensureDNSAddress(logger); err != nil {
			return fail(err)
		}
		d := dns.New(svcInf.GetIndexer(), sliceInf.GetIndexer(), dns.Options{Domain: o.ClusterDomain, Upstream: o.DNSUpstream, Logger: logger.Named("dns")})
		var addr string
		err := nsexec.Do(o.NetNS, func() error { // the sockets stay in the node's namespace
			var err error
			addr, err = d.Listen(net.JoinHostPort(o.DNSBind, strconv.Itoa(o.DNSPort)))
			return err
		})
		if err != nil {
			return fail(fmt.Errorf("dns: %w", err))
		}
		closers = append(closers, d.Stop)
		s.DNSAddress = addr
	}

	healthMux := http.NewServeMux()
	healthz := func(w http.ResponseWriter, _ *http.Request) {
		ok, last := proxier.Healthy(o.healthTimeout())
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"lastUpdated": last, "currentTime": time.Now()})
	}
	healthMux.HandleFunc("/healthz", healthz)
	healthMux.HandleFunc("/livez", healthz)
	metricsMux := http.NewServeMux()
	metricsMux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	metricsMux.HandleFunc("/healthz", healthz)

	for _, l := range []struct {
		addr string
		port int
		mux  *http.ServeMux
		out  *string
	}{
		{o.HealthzBindAddress, o.HealthzPort, healthMux, &s.HealthzAddress},
		{o.MetricsBindAddress, o.MetricsPort, metricsMux, &s.MetricsAddress},
	} {
		lis, err := net.Listen("tcp", net.JoinHostPort(l.addr, strconv.Itoa(l.port)))
		if err != nil {
			return fail(fmt.Errorf("listen: %w", err))
		}
		*l.out = lis.Addr().String()
		hs := &http.Server{Handler: l.mux, ReadHeaderTimeout: 10 * time.Second}
		closers = append(closers, func() { _ = hs.Close() })
		go func() {
			if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("http server failed", zap.Error(err))
			}
		}()
	}

	ctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	factory.Start(ctx)
	nodeFactory.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if !informer.WaitForCacheSync(ctx, svcInf.HasSynced, sliceInf.HasSynced, nodeInf.HasSynced) {
			return
		}
		// The first sync follows the Node as listed (its handler may run later).
		if n, err := nodeLister.Get("", nodeName); err == nil {
			proxier.SetNode(n)
		} else {
			logger.Warn("own Node not found; NodePorts answer on every local address until it is", zap.String("node", nodeName), zap.Error(err))
		}
		proxier.Run(ctx)
	})
	go func() {
		<-ctx.Done()
		wg.Wait()
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		factory.Wait()
		nodeFactory.Wait()
		_ = c.Close()
		close(s.done)
	}()
	return s, nil
}

// ensureDNSAddress puts --dns-bind on the --dns-interface dummy interface
// (made if missing), or on lo when the kernel has no dummy interfaces. A
// loopback address needs neither.
func (o *Options) ensureDNSAddress(logger *zap.Logger) error {
	ip := net.ParseIP(o.DNSBind)
	if ip.IsLoopback() || o.DNSInterface == "" {
		return nil
	}
	h, err := netif.HandleAt(o.NetNS)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	defer h.Close()
	err = netif.EnsureDummy(h, o.DNSInterface, ip)
	if errors.Is(err, netif.ErrDummyUnsupported) {
		logger.Warn("neither dummy nor ifb interfaces in this kernel; putting the DNS address on lo", zap.String("address", o.DNSBind))
		err = netif.EnsureAddress(h, "lo", ip)
	}
	if err != nil {
		return fmt.Errorf("dns interface: %w", err)
	}
	return nil
}

// Cleanup removes what kube-proxy made on the node: the jump rules and
// chains in the nat and filter tables, and the --dns-interface (or the
// --dns-bind address put on lo in its stead). Rules and interfaces it does
// not own are left alone.
func Cleanup(ctx context.Context, o *Options) error {
	errs := []error{iptables.Cleanup(ctx, o.runner())}
	if o.DNSInterface != "" || o.DNSBind != "" {
		h, err := netif.HandleAt(o.NetNS)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("netlink: %w", err))...)
		}
		defer h.Close()
		if o.DNSInterface != "" {
			if err := netif.DeleteDummy(h, o.DNSInterface); err != nil {
				errs = append(errs, fmt.Errorf("delete %s: %w", o.DNSInterface, err))
			}
		}
		if ip := net.ParseIP(o.DNSBind); ip != nil && !ip.IsLoopback() {
			if err := netif.DeleteAddress(h, "lo", ip); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Package app wires the kubelet: options, the command, and Start for
// running it in-process.
package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/klog/v2"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/eviction"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/node"
	"github.com/coxswain/coxswain/kubelet/internal/pods"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
	kubeletserver "github.com/coxswain/coxswain/kubelet/internal/server"
	"github.com/coxswain/coxswain/kubelet/internal/staticpods"
	"github.com/coxswain/coxswain/kubelet/internal/stats"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/events"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/kubeconfig"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/sdnotify"
)

// NewCommand returns the kubelet command.
func NewCommand() *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Coxswain's node agent: runs the node's pods through containerd and CNI",
		Long: `kubelet registers its Node, renews its Lease in kube-node-lease, watches the pods
bound to it (field selector spec.nodeName) and runs each through containerd (namespace
"coxswain"): a pause sandbox holding the pod's network, IPC and UTS namespaces, networked
with CNI, and the pod's containers sharing them, probed as their liveness, readiness and
startup probes say (Events go to the apiserver as component "kubelet"). Images come from the OCI archives of
--image-airgap-dir (imported at start) or registries. /healthz is served on
--healthz-bind-address:--healthz-port; the kubelet API (container logs, exec, attach and
port-forward for the apiserver's pods/log, pods/exec, pods/attach and pods/portforward;
resource usage on /stats/summary and /metrics/resource for the apiserver's metrics.k8s.io;
HTTPS, client certificates of the cluster CA only) on --address:--port.

Static pods: the Pod manifests (YAML or JSON) of --pod-manifest-path, a folder or one file
read again every --file-check-frequency, run without the apiserver, named <name>-<node>,
with a UID hashing the manifest, node and file; a changed file restarts its pod, a removed
one stops it, a bad one is logged and skipped. Once the apiserver answers each gets a mirror
pod there (annotation kubernetes.io/config.mirror, owned by the Node) showing its status.
The kubelet starts and runs them when the apiserver is down: node registration is retried
in the background.`,
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
			klog.SetLogger(logr.New(klogSink{logger: logger.Named("klog")}))
			s, err := Start(cmd.Context(), o, logger)
			if err != nil {
				return err
			}
			logger.Info("kubelet running", zap.String("node", s.NodeName), zap.String("healthz", s.HealthzAddress))
			// systemd (Type=notify) learns the kubelet is up once /healthz
			// answers, which it does once the node has registered or its
			// registration is retried in the background.
			stop := sdnotify.New(logger.Named("sdnotify")).Start(cmd.Context(), sdnotify.HTTPCheckAddr(s.HealthzAddress, "/healthz"))
			defer stop()
			return s.Wait()
		},
	}
	o.AddFlags(cmd.Flags())
	return cmd
}

// Server is a running kubelet.
type Server struct {
	NodeName       string
	HealthzAddress string
	// APIAddress is host:port of the kubelet API, when served.
	APIAddress string
	// Runtime is the kubelet's containerd client (tests look inside).
	Runtime *containerruntime.Runtime

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Wait blocks until the kubelet has stopped.
func (s *Server) Wait() error {
	<-s.done
	return s.err
}

// Stop stops the kubelet (the pods' containers keep running) and waits.
func (s *Server) Stop() error {
	s.cancel()
	return s.Wait()
}

// Start connects to the apiserver and containerd, imports the air-gap
// images, registers the node and runs the pods until ctx ends or Stop.
func Start(ctx context.Context, o *Options, logger *zap.Logger) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	name, err := o.NodeName()
	if err != nil {
		return nil, err
	}
	nodeIP := o.NodeIP
	if nodeIP == "" {
		nodeIP = node.DefaultNodeIP()
	}
	taints, _ := ParseTaints(o.RegisterWithTaints)

	// Reconnects at least every 5 s, so that an apiserver that comes up
	// late (a static pod itself) is seen soon.
	c, err := client.NewFromFile(o.Kubeconfig, grpc.WithConnectParams(grpc.ConnectParams{
		Backoff: backoff.Config{BaseDelay: time.Second, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 5 * time.Second}, MinConnectTimeout: 5 * time.Second,
	}))
	if err != nil {
		return nil, fmt.Errorf("apiserver client: %w", err)
	}
	rt, err := containerruntime.New(ctx, containerruntime.Config{
		Address: o.ContainerdAddress, Snapshotter: o.Snapshotter, InsecureRegistries: o.InsecureRegistries,
		FIFODir: filepath.Join(o.RootDir, "fifo"), Logger: logger.Named("runtime"),
	})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	fail := func(err error) (*Server, error) {
		_ = rt.Close()
		_ = c.Close()
		return nil, err
	}
	version, err := rt.Version(ctx)
	if err != nil {
		return fail(fmt.Errorf("containerd version: %w", err))
	}
	if o.ImageAirgapDir != "" {
		names, err := rt.ImportDir(ctx, o.ImageAirgapDir)
		if err != nil {
			return fail(err)
		}
		logger.Info("imported air-gap images", zap.Strings("images", names))
	}
	nm, err := network.New(network.Config{
		BinDirs:  strings.Split(o.CNIBinDir, ","),
		ConfDir:  o.CNIConfDir,
		CacheDir: filepath.Join(o.RootDir, "cni", "cache"),
		DataDir:  filepath.Join(o.RootDir, "cni", "networks"),
		Bridge:   o.CNIBridge,
		Logger:   logger.Named("cni"),
	})
	if err != nil {
		return fail(err)
	}
	var api net.Listener
	if o.Port > 0 {
		kc, err := kubeconfig.Load(o.Kubeconfig)
		if err != nil {
			return fail(err)
		}
		cas := x509.NewCertPool()
		if !cas.AppendCertsFromPEM(kc.CAPEM) {
			return fail(errors.New("kubelet API: the kubeconfig holds no CA certificate to verify clients with"))
		}
		var ips []net.IP
		if ip := net.ParseIP(nodeIP); ip != nil {
			ips = append(ips, ip)
		}
		if api, err = kubeletserver.Listen(net.JoinHostPort(o.Address, strconv.Itoa(o.Port)), name, ips, cas); err != nil {
			return fail(err)
		}
	}
	kubeletPort := 0
	if api != nil {
		kubeletPort = api.Addr().(*net.TCPAddr).Port
	}
	// The eviction manager (made once the stats and pods are) reports the
	// node's pressure conditions.
	var evictionManager *eviction.Manager
	nodes := node.New(c, node.Config{
		Pressure: node.PressureFunc(func(t corev1.NodeConditionType) bool {
			return evictionManager != nil && evictionManager.UnderPressure(t)
		}),
		KubeletPort: kubeletPort,
		Name:        name, NodeIP: nodeIP, Labels: o.NodeLabels, Taints: taints, MaxPods: o.MaxPods,
		RootDir: o.RootDir, RuntimeVersion: "containerd://" + version,
		RenewInterval: o.NodeLeaseRenew, StatusInterval: o.NodeStatusUpdate, Logger: logger.Named("node"),
	})
	// The apiserver may not answer yet (it may run as a static pod): the
	// registration is then retried in the background and the static pods
	// run meanwhile.
	registered := true
	if _, err := nodes.Register(ctx); err != nil {
		registered = false
		logger.Warn("node registration failed; retrying in the background", zap.String("node", name), zap.Error(err))
	} else {
		logger.Info("node registered", zap.String("node", name), zap.String("containerRuntime", "containerd://"+version))
	}

	var lis net.Listener
	if o.HealthzPort > 0 {
		lis, err = net.Listen("tcp", net.JoinHostPort(o.HealthzBindAddress, strconv.Itoa(o.HealthzPort)))
		if err != nil {
			return fail(fmt.Errorf("healthz listen: %w", err))
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	s := &Server{NodeName: name, Runtime: rt, cancel: cancel, done: make(chan struct{})}
	// A periodic resync hands every pod to its worker again, as upstream's kubelet
	// syncs all its pods every minute: a missed event heals by itself.
	factory := informer.NewFilteredFactory(c, time.Minute, "", func(lo *metav1.ListOptions) {
		lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", name).String()
	}, informer.WithLogger(logger.Named("informer")))
	podInf, podLister := informer.ForType[*corev1.Pod](factory)
	logRotation, err := o.logRotation()
	if err != nil {
		return fail(err)
	}
	recorder := events.NewRecorder(c, "kubelet", name, logger.Named("events"))
	static := newStaticPods(c, name, func() []*corev1.Pod { return podLister.List(nil) }, podInf.HasSynced, logger)
	pm := pods.New(c, rt, nm, pods.Config{
		NodeName: name, NodeIP: nodeIP, RootDir: o.RootDir, LogDir: o.PodLogDir, LogRotation: logRotation,
		PodInfraImage: o.PodInfraImage, ClusterDNS: o.ClusterDNS, ClusterDomain: o.ClusterDomain, CgroupRoot: o.CgroupRoot,
		PodCIDR: func(ctx context.Context) string {
			n, err := client.For[*corev1.Node](c).Get(ctx, "", name)
			if err != nil {
				return ""
			}
			return n.Spec.PodCIDR
		},
		Prober:   prober.NewManager(prober.Config{Exec: rt, Recorder: recorder, Logger: logger.Named("prober")}),
		Recorder: recorder,
		// Dead containers kept per container (0: the default, 1).
		MaxDeadPerContainer: o.MaxDeadContainersPerContainer,
		// Pods on the node but no longer bound to it (deleted while the
		// kubelet was down) are torn down: containers, network, volumes.
		// The static pods are the node's too.
		ListPods:   func() []*corev1.Pod { return append(podLister.List(nil), static.pods()...) },
		PodsSynced: podInf.HasSynced,
		Logger:     logger.Named("pods"),

		// The static pods' status goes to their mirror pods.
		StaticPodStatus: static.mirrors.SetStatus,
	})
	// Mirror pods are not run: their static pods are.
	_, err = podInf.AddEventHandler(staticpods.WithoutMirrors(pm.Handler()))
	if err == nil {
		err = static.attach(o, name, pm, podInf, logger)
	}
	if err != nil {
		cancel()
		if lis != nil {
			_ = lis.Close()
		}
		return fail(err)
	}

	statsProvider := stats.New(stats.Config{
		NodeName: name, Runtime: stats.NewContainerdRuntime(rt.Client(), o.Snapshotter),
		RootDir: o.RootDir, LogDir: o.PodLogDir, Logger: logger.Named("stats"),
	})
	thresholds, _ := eviction.ParseThresholds(o.EvictionHard, o.EvictionMinimumReclaim)
	evictionManager = eviction.New(eviction.Config{
		Thresholds: thresholds, PressureTransitionPeriod: o.EvictionPressureTransitionPeriod,
		Stats: statsProvider, Pods: func() []*corev1.Pod { return podLister.List(nil) }, Recorder: recorder,
		Evicter: &eviction.PodEvicter{Client: c, Containers: rt, Forget: func(p *corev1.Pod) { pm.Handler().OnDelete(p) }, RootDir: o.RootDir, Logger: logger.Named("eviction")},
		Logger:  logger.Named("eviction"),
	})

	// host-gw: a route to each other node's pod CIDR, as Nodes come and
	// go (their own informer: the pods' one only sees this node's pods).
	nodeFactory := informer.NewFactory(c, time.Minute, informer.WithLogger(logger.Named("informer")))
	var hostGW *network.HostGW
	if o.HostGWRoutes {
		if hostGW, err = network.NewHostGW(network.HostGWConfig{NodeName: name, Logger: logger.Named("hostgw")}); err != nil {
			logger.Warn("host-gw routes disabled", zap.Error(err))
		}
	}
	// Unused images go when the image filesystem fills up.
	imageGC, err := rt.NewImageGC(containerruntime.ImageGCConfig{
		HighThreshold: o.ImageGCHighThreshold, LowThreshold: o.ImageGCLowThreshold, MinAge: o.ImageMinimumGCAge,
		ImageFS: o.ContainerdRoot, PinnedImages: []string{o.PodInfraImage}, Logger: logger.Named("imagegc"),
	})
	if err != nil {
		logger.Warn("image garbage collection disabled", zap.Error(err))
	}

	var wg sync.WaitGroup
	var hs *http.Server
	if lis != nil {
		s.HealthzAddress = lis.Addr().String()
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
		hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() {
			if err := hs.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("healthz server failed", zap.Error(err))
			}
		})
	}
	var apiServer *http.Server
	var apiHandler *kubeletserver.Server
	if api != nil {
		s.APIAddress = api.Addr().String()
		apiHandler = kubeletserver.New(kubeletserver.Config{LogDir: o.PodLogDir, Runtime: rt, Stats: statsProvider, Logger: logger.Named("api")})
		// Streaming sessions (exec, attach, port-forward) outlive Shutdown, which
		// does not follow hijacked connections: they end with ctx.
		apiServer = &http.Server{Handler: apiHandler, ReadHeaderTimeout: 10 * time.Second,
			BaseContext: func(net.Listener) context.Context { return ctx }}
		wg.Go(func() {
			if err := apiServer.Serve(api); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("kubelet API server failed", zap.Error(err))
			}
		})
	}
	wg.Go(func() {
		if !registered && !registerNode(ctx, nodes, name, logger) {
			return
		}
		nodes.Run(ctx)
	})
	static.run(ctx, &wg)
	wg.Go(func() { pm.Run(ctx) })
	wg.Go(func() { recorder.Run(ctx) })
	wg.Go(func() { statsProvider.Run(ctx) })
	wg.Go(func() { evictionManager.Run(ctx) })
	if hostGW != nil {
		nodeInf, nodeLister := informer.ForType[*corev1.Node](nodeFactory)
		if _, err := nodeInf.AddEventHandler(hostGW.Handler()); err != nil {
			logger.Warn("host-gw routes disabled", zap.Error(err))
		} else {
			wg.Go(func() {
				defer hostGW.Close()
				hostGW.Run(ctx, func() []*corev1.Node { return nodeLister.List(nil) }, nodeInf.HasSynced)
			})
			nodeFactory.Start(ctx)
		}
	}
	if imageGC != nil {
		wg.Go(func() { imageGC.Run(ctx) })
	}
	factory.Start(ctx)
	go func() {
		<-ctx.Done()
		for _, srv := range []*http.Server{hs, apiServer} {
			if srv != nil {
				sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(sctx)
				scancel()
			}
		}
		if apiHandler != nil {
			apiHandler.Close()
		}
		factory.Wait()
		nodeFactory.Wait()
		wg.Wait()
		_ = rt.Close()
		_ = c.Close()
		close(s.done)
	}()
	return s, nil
}

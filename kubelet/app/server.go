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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/klog/v2"

	"github.com/coxswain/coxswain/kubelet/internal/containerruntime"
	"github.com/coxswain/coxswain/kubelet/internal/network"
	"github.com/coxswain/coxswain/kubelet/internal/node"
	"github.com/coxswain/coxswain/kubelet/internal/pods"
	"github.com/coxswain/coxswain/kubelet/internal/prober"
	kubeletserver "github.com/coxswain/coxswain/kubelet/internal/server"
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
HTTPS, client certificates of the cluster CA only) on --address:--port.`,
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
			// answers, which it does once the node has registered.
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

	c, err := client.NewFromFile(o.Kubeconfig)
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
	nodes := node.New(c, node.Config{
		KubeletPort: kubeletPort,
		Name:        name, NodeIP: nodeIP, Labels: o.NodeLabels, Taints: taints, MaxPods: o.MaxPods,
		RootDir: o.RootDir, RuntimeVersion: "containerd://" + version,
		RenewInterval: o.NodeLeaseRenew, StatusInterval: o.NodeStatusUpdate, Logger: logger.Named("node"),
	})
	if _, err := nodes.Register(ctx); err != nil {
		if api != nil {
			_ = api.Close()
		}
		return fail(err)
	}
	logger.Info("node registered", zap.String("node", name), zap.String("containerRuntime", "containerd://"+version))

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
	recorder := events.NewRecorder(c, "kubelet", name, logger.Named("events"))
	pm := pods.New(c, rt, nm, pods.Config{
		NodeName: name, NodeIP: nodeIP, RootDir: o.RootDir, LogDir: o.PodLogDir,
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
		// Pods on the node but no longer bound to it (deleted while the
		// kubelet was down) are torn down: containers, network, volumes.
		ListPods:   func() []*corev1.Pod { return podLister.List(nil) },
		PodsSynced: podInf.HasSynced,
		Logger:     logger.Named("pods"),
	})
	if _, err := podInf.AddEventHandler(pm.Handler()); err != nil {
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
	wg.Go(func() { nodes.Run(ctx) })
	wg.Go(func() { pm.Run(ctx) })
	wg.Go(func() { recorder.Run(ctx) })
	wg.Go(func() { statsProvider.Run(ctx) })
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
		wg.Wait()
		_ = rt.Close()
		_ = c.Close()
		close(s.done)
	}()
	return s, nil
}

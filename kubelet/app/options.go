package app

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/coxswain/coxswain/kubelet/internal/eviction"
	"github.com/coxswain/coxswain/kubelet/internal/logs"
	"github.com/coxswain/coxswain/pkg/logging"
)

// Options are the kubelet's flags.
type Options struct {
	Kubeconfig        string
	HostnameOverride  string
	NodeIP            string
	ContainerdAddress string
	Snapshotter       string
	RootDir           string
	PodLogDir         string
	// ContainerLogMaxSize (a quantity) and ContainerLogMaxFiles bound each
	// container's log, as upstream's flags of those names.
	ContainerLogMaxSize  string
	ContainerLogMaxFiles int
	CNIBinDir            string
	CNIConfDir           string
	CNIBridge            string
	ImageAirgapDir       string
	InsecureRegistries   []string
	MaxPods              int

	// HostGWRoutes keeps a route to every other node's pod CIDR via its
	// InternalIP (host-gw).
	HostGWRoutes bool
	// MaxDeadContainersPerContainer is how many dead instances of each
	// container are kept; ImageGC{High,Low}Threshold the image
	// filesystem usage (percent, of ContainerdRoot's filesystem) that
	// starts and ends the removal of unused images older than
	// ImageMinimumGCAge.
	MaxDeadContainersPerContainer int
	ImageGCHighThreshold          int
	ImageGCLowThreshold           int
	ImageMinimumGCAge             time.Duration
	ContainerdRoot                string

	NodeLabels         map[string]string
	RegisterWithTaints []string
	PodInfraImage      string
	// CgroupRoot is the cgroup the pods' cgroups go under
	// (<root>/kubepods/...).
	CgroupRoot         string
	ClusterDNS         []string
	ClusterDomain      string
	HealthzBindAddress string
	HealthzPort        int
	// Address and Port of the kubelet API (HTTPS; 0 disables it).
	Address          string
	Port             int
	NodeLeaseRenew   time.Duration
	NodeStatusUpdate time.Duration
	LogLevel         string
	// PodManifestPath is a folder of static pod manifests, or one
	// manifest file (empty: no static pods); FileCheckFrequency is how
	// often it is read again.
	PodManifestPath    string
	FileCheckFrequency time.Duration
	// EvictionHard, EvictionMinimumReclaim and
	// EvictionPressureTransitionPeriod configure the eviction manager.
	EvictionHard                     string
	EvictionMinimumReclaim           string
	EvictionPressureTransitionPeriod time.Duration
}

// NewOptions returns upstream's defaults.
func NewOptions() *Options {
	return &Options{
		ContainerdAddress:    "/run/containerd/containerd.sock",
		Snapshotter:          "overlayfs",
		RootDir:              "/var/lib/kubelet",
		PodLogDir:            "/var/log/pods",
		ContainerLogMaxSize:  "10Mi",
		ContainerLogMaxFiles: 5,
		CNIBinDir:            "/usr/lib/cni",
		CNIConfDir:           "/etc/cni/net.d",
		CNIBridge:            "cxs0",
		MaxPods:              110,
		PodInfraImage:        "coxswain/pause:latest",
		CgroupRoot:           "/",
		ClusterDomain:        "cluster.local",
		HealthzBindAddress:   "127.0.0.1",
		HealthzPort:          10248,
		Address:              "0.0.0.0",
		Port:                 10250,
		NodeLeaseRenew:       10 * time.Second,
		NodeStatusUpdate:     10 * time.Second,
		LogLevel:             "info",
		FileCheckFrequency:   20 * time.Second,

		EvictionHard:                     eviction.DefaultEvictionHard,
		EvictionPressureTransitionPeriod: 5 * time.Minute,

		HostGWRoutes:                  true,
		MaxDeadContainersPerContainer: 1,
		ImageGCHighThreshold:          85,
		ImageGCLowThreshold:           80,
		ImageMinimumGCAge:             2 * time.Minute,
		ContainerdRoot:                "/var/lib/containerd",
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "kubeconfig file of the apiserver (required)")
	fs.StringVar(&o.HostnameOverride, "hostname-override", o.HostnameOverride, "node name (default: the machine's hostname)")
	fs.StringVar(&o.NodeIP, "node-ip", o.NodeIP, "the node's InternalIP (default: the address of the default route's interface)")
	fs.StringVar(&o.ContainerdAddress, "containerd-address", o.ContainerdAddress, "containerd socket")
	fs.StringVar(&o.Snapshotter, "snapshotter", o.Snapshotter, "containerd snapshotter")
	fs.StringVar(&o.RootDir, "root-dir", o.RootDir, "kubelet state: pods' files, network namespaces, CNI cache and IP allocations")
	fs.StringVar(&o.PodLogDir, "pod-log-dir", o.PodLogDir, "containers' logs, <namespace>_<pod>_<uid>/<container>/<restart>.log")
	fs.StringVar(&o.ContainerLogMaxSize, "container-log-max-size", o.ContainerLogMaxSize, "size at which a container's log is rotated (a quantity: 10Mi); 0 never rotates")
	fs.IntVar(&o.ContainerLogMaxFiles, "container-log-max-files", o.ContainerLogMaxFiles, "log files kept per container run, the current one included (at least 2); rotated ones but the newest are gzipped")
	fs.StringVar(&o.CNIBinDir, "cni-bin-dir", o.CNIBinDir, "CNI plugin folders, comma-separated")
	fs.StringVar(&o.CNIConfDir, "cni-conf-dir", o.CNIConfDir, "CNI config folder; when empty the kubelet writes a bridge + host-local config for the node's podCIDR")
	fs.StringVar(&o.CNIBridge, "cni-bridge", o.CNIBridge, "bridge of the config the kubelet writes")
	fs.StringVar(&o.ImageAirgapDir, "image-airgap-dir", o.ImageAirgapDir, "folder of OCI archives (*.tar) imported at start")
	fs.StringSliceVar(&o.InsecureRegistries, "insecure-registry", o.InsecureRegistries, "registries (host:port) pulled from over plain HTTP")
	fs.IntVar(&o.MaxPods, "max-pods", o.MaxPods, "pods capacity of the node")
	fs.BoolVar(&o.HostGWRoutes, "host-gw-routes", o.HostGWRoutes, "keep a route to every other node's spec.podCIDR via its InternalIP (routing protocol 118; only those routes are ever changed)")
	fs.IntVar(&o.MaxDeadContainersPerContainer, "maximum-dead-containers-per-container", o.MaxDeadContainersPerContainer, "dead instances of each container kept, with their logs (negative: no limit)")
	fs.IntVar(&o.ImageGCHighThreshold, "image-gc-high-threshold", o.ImageGCHighThreshold, "image filesystem usage (percent) at which unused images are removed (100 disables)")
	fs.IntVar(&o.ImageGCLowThreshold, "image-gc-low-threshold", o.ImageGCLowThreshold, "image filesystem usage (percent) the image garbage collection brings it down to")
	fs.DurationVar(&o.ImageMinimumGCAge, "minimum-image-ttl-duration", o.ImageMinimumGCAge, "how long an image stays unused at least before it is removed")
	fs.StringVar(&o.ContainerdRoot, "containerd-root", o.ContainerdRoot, "containerd's root folder: its filesystem is the image filesystem")
	fs.StringToStringVar(&o.NodeLabels, "node-labels", o.NodeLabels, "labels added to the Node at registration, k=v,...")
	fs.StringSliceVar(&o.RegisterWithTaints, "register-with-taints", o.RegisterWithTaints, "taints of the Node at registration, key[=value]:Effect,...")
	fs.StringVar(&o.PodInfraImage, "pod-infra-image", o.PodInfraImage, "image of the pods' sandbox (pause) containers")
	fs.StringVar(&o.CgroupRoot, "cgroup-root", o.CgroupRoot, "cgroup (cgroupfs path) under which the pods' cgroups are made: <root>/kubepods/{burstable,besteffort}/pod<uid>")
	fs.StringSliceVar(&o.ClusterDNS, "cluster-dns", o.ClusterDNS, "DNS servers of ClusterFirst pods (default: the host's resolv.conf)")
	fs.StringVar(&o.ClusterDomain, "cluster-domain", o.ClusterDomain, "cluster DNS domain")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress, "address of /healthz")
	fs.IntVar(&o.HealthzPort, "healthz-port", o.HealthzPort, "port of /healthz (0 disables)")
	fs.StringVar(&o.Address, "address", o.Address, "address of the kubelet API")
	fs.IntVar(&o.Port, "port", o.Port, "port of the kubelet API: HTTPS, client certificates of the cluster CA only; serves container logs to the apiserver (0 disables)")
	fs.DurationVar(&o.NodeLeaseRenew, "node-lease-renew-interval", o.NodeLeaseRenew, "how often the node Lease is renewed")
	fs.DurationVar(&o.NodeStatusUpdate, "node-status-update-frequency", o.NodeStatusUpdate, "how often the node status is computed (written when changed)")
	fs.StringVar(&o.PodManifestPath, "pod-manifest-path", o.PodManifestPath, "folder of static pod manifests (YAML or JSON Pods, hidden files skipped), or one manifest file: run without the apiserver, mirrored to it as mirror pods")
	fs.DurationVar(&o.FileCheckFrequency, "file-check-frequency", o.FileCheckFrequency, "how often --pod-manifest-path is read again")
	fs.StringVar(&o.EvictionHard, "eviction-hard", o.EvictionHard, "hard eviction thresholds, signal<value,... (memory.available, nodefs.available, nodefs.inodesFree, imagefs.available, imagefs.inodesFree, pid.available; a quantity or a percentage of capacity; 0 turns one off; empty: no evictions)")
	fs.StringVar(&o.EvictionMinimumReclaim, "eviction-minimum-reclaim", o.EvictionMinimumReclaim, "what an eviction reclaims beyond its threshold before the threshold is no longer met, signal=value,...")
	fs.DurationVar(&o.EvictionPressureTransitionPeriod, "eviction-pressure-transition-period", o.EvictionPressureTransitionPeriod, "how long a pressure condition holds after its eviction threshold was last met")
	logging.AddFlags(fs, &o.LogLevel)
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	if o.NodeIP != "" && net.ParseIP(o.NodeIP) == nil {
		errs = append(errs, fmt.Errorf("--node-ip %q is not an IP address", o.NodeIP))
	}
	if !strings.HasPrefix(o.CgroupRoot, "/") {
		errs = append(errs, fmt.Errorf("--cgroup-root %q must be an absolute cgroup path", o.CgroupRoot))
	}
	if _, err := o.logRotation(); err != nil {
		errs = append(errs, err)
	}
	if o.MaxPods <= 0 {
		errs = append(errs, errors.New("--max-pods must be positive"))
	}
	if o.ImageGCHighThreshold < 0 || o.ImageGCHighThreshold > 100 || o.ImageGCLowThreshold < 0 || o.ImageGCLowThreshold > o.ImageGCHighThreshold {
		errs = append(errs, fmt.Errorf("--image-gc-high-threshold %d and --image-gc-low-threshold %d: want 0 <= low <= high <= 100", o.ImageGCHighThreshold, o.ImageGCLowThreshold))
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, errors.New("--port must be 0..65535"))
	}
	if o.HealthzPort < 0 || o.HealthzPort > 65535 {
		errs = append(errs, errors.New("--healthz-port must be 0..65535"))
	}
	if _, err := ParseTaints(o.RegisterWithTaints); err != nil {
		errs = append(errs, err)
	}
	if o.PodManifestPath != "" && o.FileCheckFrequency <= 0 {
		errs = append(errs, errors.New("--file-check-frequency must be positive"))
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if _, err := eviction.ParseThresholds(o.EvictionHard, o.EvictionMinimumReclaim); err != nil {
		errs = append(errs, err)
	}
	if o.EvictionPressureTransitionPeriod < 0 {
		errs = append(errs, errors.New("--eviction-pressure-transition-period must not be negative"))
	}
	return errors.Join(errs...)
}

// NodeName is --hostname-override, or the lowercased hostname.
func (o *Options) NodeName() (string, error) {
	if o.HostnameOverride != "" {
		return strings.ToLower(strings.TrimSpace(o.HostnameOverride)), nil
	}
	h, err := os.Hostname()
	if err != nil {
		return "", err
	}
	return strings.ToLower(h), nil
}

// ParseTaints parses key[=value]:Effect entries.
func ParseTaints(specs []string) ([]corev1.Taint, error) {
	var out []corev1.Taint
	for _, s := range specs {
		kv, effect, ok := strings.Cut(s, ":")
		if !ok {
			return nil, fmt.Errorf("taint %q: want key[=value]:Effect", s)
		}
		switch corev1.TaintEffect(effect) {
		case corev1.TaintEffectNoSchedule, corev1.TaintEffectPreferNoSchedule, corev1.TaintEffectNoExecute:
		default:
			return nil, fmt.Errorf("taint %q: unknown effect %q", s, effect)
		}
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("taint %q: empty key", s)
		}
		out = append(out, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
	}
	return out, nil
}

// logRotation is --container-log-max-size and --container-log-max-files.
func (o *Options) logRotation() (logs.Rotation, error) {
	q, err := resource.ParseQuantity(o.ContainerLogMaxSize)
	if err != nil || q.Sign() < 0 {
		return logs.Rotation{}, fmt.Errorf("--container-log-max-size %q: want a quantity such as 10Mi", o.ContainerLogMaxSize)
	}
	if o.ContainerLogMaxFiles < 2 {
		return logs.Rotation{}, fmt.Errorf("--container-log-max-files %d: want at least 2", o.ContainerLogMaxFiles)
	}
	return logs.Rotation{MaxSize: q.Value(), MaxFiles: o.ContainerLogMaxFiles}, nil
}

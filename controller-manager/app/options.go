// Package app holds kube-controller-manager's options and wiring, so that
// the binary, tests and a future all-in-one binary start it the same way.
package app

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/coxswain/coxswain/controller-manager/internal/controller/podgc"
	"github.com/coxswain/coxswain/pkg/leaderelection"
	"github.com/coxswain/coxswain/pkg/logging"
	"github.com/coxswain/coxswain/pkg/secureserving"
)

// Options are kube-controller-manager's settings.
type Options struct {
	Kubeconfig string

	LeaderElect                  bool
	LeaderElectLeaseDuration     time.Duration
	LeaderElectRenewDeadline     time.Duration
	LeaderElectRetryPeriod       time.Duration
	LeaderElectResourceNamespace string
	LeaderElectResourceName      string

	// Controllers enables and disables controllers: "*" is every
	// controller on by default, "foo" enables foo, "-foo" disables it.
	Controllers []string

	ConcurrentReplicaSetSyncs      int
	ConcurrentRCSyncs              int
	ConcurrentDeploymentSyncs      int
	ConcurrentEndpointSyncs        int
	ConcurrentServiceEndpointSyncs int
	ConcurrentNamespaceSyncs       int
	ConcurrentServiceAccountSyncs  int
	ConcurrentGCSyncs              int
	ConcurrentNodeLifecycleSyncs   int

	// MinResyncPeriod is the informers' resync period.
	MinResyncPeriod time.Duration

	ClusterCIDR            string
	NodeCIDRMaskSize       int
	NodeMonitorGracePeriod time.Duration

	// TerminatedPodGCThreshold is how many terminated pods may exist
	// before the pod garbage collector deletes the oldest; 0 or less
	// keeps them all.
	TerminatedPodGCThreshold int

	// Serving is the HTTPS port of /healthz, /readyz and /metrics.
	Serving  secureserving.Options
	LogLevel string
	// Profiling serves /debug/pprof on the secure port.
	Profiling bool
}

// NewOptions returns the defaults, upstream's.
func NewOptions() *Options {
	return &Options{
		LeaderElect:                    true,
		LeaderElectLeaseDuration:       leaderelection.DefaultLeaseDuration,
		LeaderElectRenewDeadline:       leaderelection.DefaultRenewDeadline,
		LeaderElectRetryPeriod:         leaderelection.DefaultRetryPeriod,
		LeaderElectResourceNamespace:   leaderelection.DefaultNamespace,
		LeaderElectResourceName:        "kube-controller-manager",
		Controllers:                    []string{"*"},
		ConcurrentReplicaSetSyncs:      5,
		ConcurrentRCSyncs:              5,
		ConcurrentDeploymentSyncs:      5,
		ConcurrentEndpointSyncs:        5,
		ConcurrentServiceEndpointSyncs: 5,
		ConcurrentNamespaceSyncs:       10,
		ConcurrentServiceAccountSyncs:  1,
		ConcurrentGCSyncs:              20,
		ConcurrentNodeLifecycleSyncs:   2,
		MinResyncPeriod:                12 * time.Hour,
		NodeCIDRMaskSize:               24,
		NodeMonitorGracePeriod:         40 * time.Second,
		TerminatedPodGCThreshold:       podgc.DefaultTerminatedPodThreshold,
		Serving:                        secureserving.Options{BindAddress: "0.0.0.0", Port: 10257},
		LogLevel:                       "info",
	}
}

// AddFlags binds the options to flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file with the apiserver's address and the controller-manager's credentials (required).")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Run the controllers only while holding the leader Lease, so that replicas can stand by.")
	fs.DurationVar(&o.LeaderElectLeaseDuration, "leader-elect-lease-duration", o.LeaderElectLeaseDuration, "How long a standby waits after the last renewal before taking the lease.")
	fs.DurationVar(&o.LeaderElectRenewDeadline, "leader-elect-renew-deadline", o.LeaderElectRenewDeadline, "How long the leader retries renewing before it gives up leadership.")
	fs.DurationVar(&o.LeaderElectRetryPeriod, "leader-elect-retry-period", o.LeaderElectRetryPeriod, "Pause between attempts to acquire or renew the lease.")
	fs.StringVar(&o.LeaderElectResourceNamespace, "leader-elect-resource-namespace", o.LeaderElectResourceNamespace, "Namespace of the leader Lease.")
	fs.StringVar(&o.LeaderElectResourceName, "leader-elect-resource-name", o.LeaderElectResourceName, "Name of the leader Lease.")
	fs.StringSliceVar(&o.Controllers, "controllers", o.Controllers, fmt.Sprintf("Controllers to run: '*' is all on by default, 'foo' enables foo, '-foo' disables it. Implemented: %s (%s only with --cluster-cidr, which '*' then enables). Accepted but not implemented yet: %s.",
		strings.Join(KnownControllers(), ", "), strings.Join(needsClusterCIDR, ", "), strings.Join(notImplemented, ", ")))
	fs.IntVar(&o.ConcurrentReplicaSetSyncs, "concurrent-replicaset-syncs", o.ConcurrentReplicaSetSyncs, "ReplicaSets synced at once.")
	fs.IntVar(&o.ConcurrentRCSyncs, "concurrent-rc-syncs", o.ConcurrentRCSyncs, "ReplicationControllers synced at once.")
	fs.IntVar(&o.ConcurrentDeploymentSyncs, "concurrent-deployment-syncs", o.ConcurrentDeploymentSyncs, "Deployments synced at once.")
	fs.IntVar(&o.ConcurrentEndpointSyncs, "concurrent-endpoint-syncs", o.ConcurrentEndpointSyncs, "Services whose Endpoints are synced at once.")
	fs.IntVar(&o.ConcurrentServiceEndpointSyncs, "concurrent-service-endpoint-syncs", o.ConcurrentServiceEndpointSyncs, "Services whose EndpointSlices are synced at once.")
	fs.IntVar(&o.ConcurrentNamespaceSyncs, "concurrent-namespace-syncs", o.ConcurrentNamespaceSyncs, "Terminating namespaces emptied at once.")
	fs.IntVar(&o.ConcurrentServiceAccountSyncs, "concurrent-serviceaccount-syncs", o.ConcurrentServiceAccountSyncs, "Namespaces whose default ServiceAccount is ensured at once.")
	fs.IntVar(&o.ConcurrentGCSyncs, "concurrent-gc-syncs", o.ConcurrentGCSyncs, "Objects the garbage collector processes at once.")
	fs.IntVar(&o.ConcurrentNodeLifecycleSyncs, "concurrent-node-lifecycle-syncs", o.ConcurrentNodeLifecycleSyncs, "Nodes whose health and taints are checked at once.")
	fs.DurationVar(&o.MinResyncPeriod, "min-resync-period", o.MinResyncPeriod, "Informer resync period: every cached object is reconciled again this often.")
	fs.StringVar(&o.ClusterCIDR, "cluster-cidr", o.ClusterCIDR, "CIDR of the pod network (e.g. 10.244.0.0/16), split into node pod CIDRs by the nodeipam controller, which '*' enables only when this is set.")
	fs.IntVar(&o.NodeCIDRMaskSize, "node-cidr-mask-size", o.NodeCIDRMaskSize, "Prefix length of each node's pod CIDR, at most 16 bits longer than --cluster-cidr's.")
	fs.DurationVar(&o.NodeMonitorGracePeriod, "node-monitor-grace-period", o.NodeMonitorGracePeriod, "How long a node's Lease and status may stay unchanged before its Ready condition becomes Unknown and it is tainted unreachable.")
	fs.IntVar(&o.TerminatedPodGCThreshold, "terminated-pod-gc-threshold", o.TerminatedPodGCThreshold, "Number of terminated pods that can exist before the terminated pod garbage collector starts deleting terminated pods. If <= 0, the terminated pod garbage collector is disabled.")
	o.Serving.AddFlags(fs, "/healthz, /livez, /readyz and /metrics")
	fs.BoolVar(&o.Profiling, "profiling", o.Profiling, "Serve Go's pprof profiles under /debug/pprof/ on the secure port. The port does not authenticate: enable only on a trusted --bind-address.")
	logging.AddFlags(fs, &o.LogLevel)
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Kubeconfig == "" {
		errs = append(errs, errors.New("--kubeconfig is required"))
	}
	if _, err := EnabledControllers(o.Controllers); err != nil {
		errs = append(errs, fmt.Errorf("--controllers: %w", err))
	}
	if o.ClusterCIDR == "" {
		for _, s := range o.Controllers {
			if name := strings.TrimSpace(s); slices.Contains(needsClusterCIDR, name) {
				errs = append(errs, fmt.Errorf("--controllers: %s needs --cluster-cidr", name))
			}
		}
	}
	for name, n := range map[string]int{
		"--concurrent-replicaset-syncs": o.ConcurrentReplicaSetSyncs, "--concurrent-rc-syncs": o.ConcurrentRCSyncs,
		"--concurrent-deployment-syncs": o.ConcurrentDeploymentSyncs, "--concurrent-endpoint-syncs": o.ConcurrentEndpointSyncs,
		"--concurrent-service-endpoint-syncs": o.ConcurrentServiceEndpointSyncs, "--concurrent-namespace-syncs": o.ConcurrentNamespaceSyncs,
		"--concurrent-serviceaccount-syncs": o.ConcurrentServiceAccountSyncs, "--concurrent-gc-syncs": o.ConcurrentGCSyncs,
		"--concurrent-node-lifecycle-syncs": o.ConcurrentNodeLifecycleSyncs,
	} {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1, got %d", name, n))
		}
	}
	if o.MinResyncPeriod < 0 {
		errs = append(errs, errors.New("--min-resync-period must not be negative"))
	}
	if o.ClusterCIDR != "" {
		if _, cidr, err := net.ParseCIDR(o.ClusterCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
		} else {
			ones, bits := cidr.Mask.Size()
			if o.NodeCIDRMaskSize < ones || o.NodeCIDRMaskSize > bits || o.NodeCIDRMaskSize-ones > 16 {
				errs = append(errs, fmt.Errorf("--node-cidr-mask-size %d must be between the cluster CIDR's prefix length %d and %d, and at most 16 more", o.NodeCIDRMaskSize, ones, bits))
			}
		}
	}
	if o.NodeMonitorGracePeriod <= 0 {
		errs = append(errs, errors.New("--node-monitor-grace-period must be positive"))
	}
	if o.LeaderElect {
		if o.LeaderElectLeaseDuration <= o.LeaderElectRenewDeadline {
			errs = append(errs, errors.New("--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline"))
		}
		if o.LeaderElectRenewDeadline <= o.LeaderElectRetryPeriod {
			errs = append(errs, errors.New("--leader-elect-renew-deadline must be greater than --leader-elect-retry-period"))
		}
		if o.LeaderElectResourceName == "" || o.LeaderElectResourceNamespace == "" {
			errs = append(errs, errors.New("--leader-elect-resource-name and --leader-elect-resource-namespace are required"))
		}
	}
	if err := o.Serving.Validate(); err != nil {
		errs = append(errs, err)
	}
	if _, err := logging.ParseLevel(o.LogLevel); err != nil {
		errs = append(errs, fmt.Errorf("--log-level: %w", err))
	}
	return errors.Join(errs...)
}

// enabledControllers resolves --controllers for these options: '*' leaves
// out the controllers that need a setting which is not there.
func (o *Options) enabledControllers() ([]string, error) {
	enabled, err := EnabledControllers(o.Controllers)
	if err != nil || o.ClusterCIDR != "" {
		return enabled, err
	}
	explicit := map[string]bool{}
	for _, s := range o.Controllers {
		explicit[strings.TrimSpace(s)] = true
	}
	return slices.DeleteFunc(enabled, func(name string) bool {
		return slices.Contains(needsClusterCIDR, name) && !explicit[name]
	}), nil
}

// EnabledControllers resolves a --controllers list into the implemented
// controllers to run, sorted.
func EnabledControllers(spec []string) ([]string, error) {
	known := KnownControllers()
	all := slices.Concat(known, notImplemented)
	star := false
	on, off := map[string]bool{}, map[string]bool{}
	var errs []error
	for _, s := range spec {
		s = strings.TrimSpace(s)
		name := strings.TrimPrefix(s, "-")
		switch {
		case s == "*":
			star = true
			continue
		case name == "" || !slices.Contains(all, name):
			errs = append(errs, fmt.Errorf("unknown controller %q", s))
			continue
		}
		if strings.HasPrefix(s, "-") {
			off[name] = true
		} else {
			on[name] = true
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	var out []string
	for _, name := range known {
		if off[name] {
			continue
		}
		if on[name] || star {
			out = append(out, name)
		}
	}
	return out, nil
}

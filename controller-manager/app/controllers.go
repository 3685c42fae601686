package app

import (
	"context"
	"maps"
	"slices"

	"go.uber.org/zap"

	"github.com/coxswain/coxswain/controller-manager/internal/controller/deployment"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/endpoints"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/endpointslice"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/garbagecollector"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/namespace"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/nodeipam"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/nodelifecycle"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/podgc"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/replicaset"
	"github.com/coxswain/coxswain/controller-manager/internal/controller/serviceaccount"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/events"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// controllerContext is what a controller is built from.
type controllerContext struct {
	client  *client.Client
	factory *informer.Factory
	options *Options
	logger  *zap.Logger
	metrics *workqueue.Metrics
	// recorder is the process's event recorder; controllers derive
	// theirs with upstream's component names.
	recorder *events.Recorder
}

// runFunc runs a built controller until ctx is done.
type runFunc func(ctx context.Context)

// newFunc builds a controller and registers its informer handlers.
type newFunc func(cc *controllerContext) (runFunc, error)

// controllers are the implemented controllers, by upstream's names.
var controllers = map[string]newFunc{
	"replicaset": func(cc *controllerContext) (runFunc, error) {
		c, err := replicaset.New(replicaset.ReplicaSetKind, cc.client, cc.factory, cc.recorder.WithComponent("replicaset-controller"), cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentReplicaSetSyncs) }, nil
	},
	"replicationcontroller": func(cc *controllerContext) (runFunc, error) {
		c, err := replicaset.New(replicaset.ReplicationControllerKind, cc.client, cc.factory, cc.recorder.WithComponent("replication-controller"), cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentRCSyncs) }, nil
	},
	"deployment": func(cc *controllerContext) (runFunc, error) {
		c, err := deployment.New(cc.client, cc.factory, cc.recorder.WithComponent("deployment-controller"), cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentDeploymentSyncs) }, nil
	},
	"endpoint": func(cc *controllerContext) (runFunc, error) {
		c, err := endpoints.New(cc.client, cc.factory, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentEndpointSyncs) }, nil
	},
	"endpointslice": func(cc *controllerContext) (runFunc, error) {
		c, err := endpointslice.New(cc.client, cc.factory, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentServiceEndpointSyncs) }, nil
	},
	"serviceaccount": func(cc *controllerContext) (runFunc, error) {
		c, err := serviceaccount.New(cc.client, cc.factory, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentServiceAccountSyncs) }, nil
	},
	"namespace": func(cc *controllerContext) (runFunc, error) {
		c, err := namespace.New(cc.client, cc.factory, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentNamespaceSyncs) }, nil
	},
	"garbagecollector": func(cc *controllerContext) (runFunc, error) {
		c, err := garbagecollector.New(cc.client, cc.factory, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentGCSyncs) }, nil
	},
	"nodeipam": func(cc *controllerContext) (runFunc, error) {
		c, err := nodeipam.New(cc.client, cc.factory, cc.options.ClusterCIDR, cc.options.NodeCIDRMaskSize, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, 1) }, nil
	},
	"nodelifecycle": func(cc *controllerContext) (runFunc, error) {
		c, err := nodelifecycle.New(cc.client, cc.factory, nodelifecycle.Config{GracePeriod: cc.options.NodeMonitorGracePeriod},
			cc.recorder.WithComponent("node-controller"), cc.recorder.WithComponent("taint-eviction-controller"), cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, cc.options.ConcurrentNodeLifecycleSyncs) }, nil
	},
	"podgc": func(cc *controllerContext) (runFunc, error) {
		c, err := podgc.New(cc.client, cc.factory, podgc.Config{TerminatedPodThreshold: cc.options.TerminatedPodGCThreshold}, cc.logger, cc.metrics)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) { c.Run(ctx, 2) }, nil
	},
}

// needsClusterCIDR are controllers that '*' turns on only when
// --cluster-cidr is set (upstream: only with --allocate-node-cidrs).
var needsClusterCIDR = []string{"nodeipam"}

// notImplemented are upstream's controller names that --controllers
// accepts but that do not run yet.
var notImplemented = []string{
	"attachdetach", "bootstrapsigner", "clusterrole-aggregation", "cronjob", "csrapproving", "csrcleaner",
	"csrsigning", "daemonset", "disruption", "endpointslicemirroring", "ephemeral-volume",
	"horizontalpodautoscaling", "job", "persistentvolume-binder",
	"persistentvolume-expander", "pv-protection", "pvc-protection", "resourcequota", "root-ca-cert-publisher",
	"serviceaccount-token", "statefulset", "tokencleaner", "ttl", "ttl-after-finished",
}

// KnownControllers lists the implemented controllers, sorted.
func KnownControllers() []string {
	return slices.Sorted(maps.Keys(controllers))
}

// Package nodeipam gives every Node a pod CIDR (spec.podCIDR and
// spec.podCIDRs) out of the cluster CIDR, as upstream's range allocator
// does: never the same CIDR to two nodes, the allocated set rebuilt from
// the existing nodes at start, a deleted node's CIDR released.
package nodeipam

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// Nodes is the part of the Node client the controller uses.
type Nodes interface {
	Get(ctx context.Context, ns, name string) (*corev1.Node, error)
	Update(ctx context.Context, ns string, n *corev1.Node) (*corev1.Node, error)
}

// Controller allocates node pod CIDRs. Its keys are node names.
type Controller struct {
	nodes  Nodes
	lister *informer.Lister[*corev1.Node]
	alloc  *Allocator
	synced []func() bool
	queue  *workqueue.Typed[string]
	logger *zap.Logger
}

// New returns the controller for clusterCIDR split in /maskSize, fed by
// f's node informer.
func New(c *client.Client, f *informer.Factory, clusterCIDR string, maskSize int, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	alloc, err := NewAllocator(clusterCIDR, maskSize)
	if err != nil {
		return nil, fmt.Errorf("nodeipam: %w", err)
	}
	inf, lister := informer.ForType[*corev1.Node](f)
	nc := newController(client.For[*corev1.Node](c), lister, alloc, logger, controller.NewQueue("nodeipam", m))
	nc.synced = []func() bool{inf.HasSynced}
	if _, err := inf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { controller.Enqueue(nc.queue, obj) },
		UpdateFunc: func(_, cur any) { controller.Enqueue(nc.queue, cur) },
		DeleteFunc: nc.deleteNode,
	}); err != nil {
		return nil, fmt.Errorf("nodeipam: watch nodes: %w", err)
	}
	return nc, nil
}

func newController(nodes Nodes, lister *informer.Lister[*corev1.Node], alloc *Allocator, logger *zap.Logger, q *workqueue.Typed[string]) *Controller {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Controller{nodes: nodes, lister: lister, alloc: alloc, queue: q, logger: logger.Named("nodeipam")}
}

// Run rebuilds the allocated set from the cached nodes, then reconciles
// with workers goroutines until ctx is done.
func (nc *Controller) Run(ctx context.Context, workers int) {
	if !informer.WaitForCacheSync(ctx, nc.synced...) {
		nc.queue.ShutDown()
		return
	}
	nc.occupyExisting()
	controller.Run(ctx, "nodeipam", nc.logger, nc.queue, workers, nc.sync, nc.synced...)
}

// occupyExisting marks every CIDR the nodes already have as used, so that
// a restarted controller never hands one out again.
func (nc *Controller) occupyExisting() {
	for _, n := range nc.lister.List(nil) {
		nc.occupy(n)
	}
}

func (nc *Controller) occupy(n *corev1.Node) {
	for _, cidr := range nodeCIDRs(n) {
		if err := nc.alloc.Occupy(cidr); err != nil {
			nc.logger.Warn("node pod CIDR outside the cluster CIDR", zap.String("node", n.Name), zap.String("cidr", cidr), zap.Error(err))
		}
	}
}

func nodeCIDRs(n *corev1.Node) []string {
	if len(n.Spec.PodCIDRs) > 0 {
		return n.Spec.PodCIDRs
	}
	if n.Spec.PodCIDR != "" {
		return []string{n.Spec.PodCIDR}
	}
	return nil
}

func (nc *Controller) deleteNode(obj any) {
	if d, ok := obj.(informer.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	n, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	for _, cidr := range nodeCIDRs(n) {
		nc.alloc.Release(cidr)
		nc.logger.Info("released node pod CIDR", zap.String("node", n.Name), zap.String("cidr", cidr))
	}
}

func (nc *Controller) sync(ctx context.Context, name string) error {
	cached, err := nc.lister.Get("", name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	if len(nodeCIDRs(cached)) > 0 {
		nc.occupy(cached)
		return nil
	}
	cidr, err := nc.alloc.Allocate()
	if err != nil {
		return fmt.Errorf("allocate pod CIDR for node %s: %w", name, err)
	}
	// The cache may lag behind an earlier assignment: decide on a fresh read.
	fresh, err := nc.nodes.Get(ctx, "", name)
	if err != nil {
		nc.alloc.Release(cidr)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get node %s: %w", name, err)
	}
	if len(nodeCIDRs(fresh)) > 0 {
		nc.alloc.Release(cidr)
		nc.occupy(fresh)
		return nil
	}
	fresh = fresh.DeepCopy()
	fresh.Spec.PodCIDR = cidr
	fresh.Spec.PodCIDRs = []string{cidr}
	if _, err := nc.nodes.Update(ctx, "", fresh); err != nil {
		nc.alloc.Release(cidr)
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("set pod CIDR of node %s: %w", name, err)
	}
	nc.logger.Info("allocated node pod CIDR", zap.String("node", name), zap.String("cidr", cidr))
	return nil
}

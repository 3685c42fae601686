// Package podgc deletes pods that nothing else will, as upstream's pod
// garbage collector does:
//   - pods bound to a node that no longer exists: once the node cache lacks
//     the node and a quorum read confirms it is gone, they are marked
//     Failed (with a DisruptionTarget condition) and force-deleted (grace
//     0), since no kubelet will ever finish them;
//   - terminated (Succeeded or Failed) pods beyond a threshold, evicted
//     ones first, then oldest first;
//   - terminating pods that were never scheduled.
//
// A node seen deleted is checked at once; a pod naming a node the cache
// never had (the node informer may lag the pod informer) is checked after
// a quarantine, as upstream's.
package podgc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// Upstream's settings.
const (
	// DefaultTerminatedPodThreshold is --terminated-pod-gc-threshold's
	// default.
	DefaultTerminatedPodThreshold = 12500
	// DefaultCheckPeriod is how often every pod is looked at (upstream's
	// gcCheckPeriod).
	DefaultCheckPeriod = 20 * time.Second
	// DefaultQuarantine is how long a node that a pod names may be missing
	// from the cache before it is read from the apiserver (upstream's
	// quarantineTime).
	DefaultQuarantine = 40 * time.Second
)

// Upstream's condition on the pods of a deleted node.
const (
	ReasonDeletionByPodGC = "DeletionByPodGC"
	MessageNodeGone       = "PodGC: node no longer exists"
)

// deleteParallelism bounds the pod writes in flight at once.
const deleteParallelism = 16

// Queue keys: one for the periodic pass, one per node to check.
const (
	sweepKey   = "sweep"
	nodePrefix = "node/"
)

// Pods is the part of the Pod client the collector uses.
type Pods interface {
	UpdateStatus(ctx context.Context, ns string, p *corev1.Pod) (*corev1.Pod, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
}

// Nodes is the part of the Node client the collector uses: a Get with no
// resourceVersion, which the apiserver answers from etcd (a quorum read).
type Nodes interface {
	Get(ctx context.Context, ns, name string) (*corev1.Node, error)
}

// Config is the collector's settings.
type Config struct {
	// TerminatedPodThreshold is how many terminated pods may exist before
	// the oldest are deleted; 0 or less keeps them all.
	TerminatedPodThreshold int
	// CheckPeriod is how often every pod is looked at (default
	// DefaultCheckPeriod).
	CheckPeriod time.Duration
	// Quarantine is how long a node missing from the cache, and not seen
	// deleted, waits before it is checked (default DefaultQuarantine).
	Quarantine time.Duration
}

// Controller is the pod garbage collector.
type Controller struct {
	pods       Pods
	nodes      Nodes
	podLister  *informer.Lister[*corev1.Pod]
	podIndex   informer.Indexer
	nodeLister *informer.Lister[*corev1.Node]
	cfg        Config
	synced     []func() bool
	queue      *workqueue.Typed[string]
	logger     *zap.Logger
}

// New returns the collector, fed by f's pod and node informers.
func New(c *client.Client, f *informer.Factory, cfg Config, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	podInf, podLister := informer.ForType[*corev1.Pod](f)
	nodeInf, nodeLister := informer.ForType[*corev1.Node](f)
	if err := controller.IndexPodsByNode(podInf); err != nil {
		return nil, fmt.Errorf("podgc: index pods: %w", err)
	}
	gc := newController(client.For[*corev1.Pod](c), client.For[*corev1.Node](c), podLister, podInf.GetIndexer(), nodeLister, cfg, logger, controller.NewQueue("podgc", m))
	gc.synced = []func() bool{podInf.HasSynced, nodeInf.HasSynced}
	if _, err := nodeInf.AddEventHandler(informer.ResourceEventHandlerFuncs{DeleteFunc: gc.nodeDeleted}); err != nil {
		return nil, fmt.Errorf("podgc: watch nodes: %w", err)
	}
	if _, err := podInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    gc.podChanged,
		UpdateFunc: func(_, cur any) { gc.podChanged(cur) },
	}); err != nil {
		return nil, fmt.Errorf("podgc: watch pods: %w", err)
	}
	return gc, nil
}

func newController(pods Pods, nodes Nodes, podLister *informer.Lister[*corev1.Pod], podIndex informer.Indexer, nodeLister *informer.Lister[*corev1.Node], cfg Config, logger *zap.Logger, q *workqueue.Typed[string]) *Controller {
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.CheckPeriod <= 0 {
		cfg.CheckPeriod = DefaultCheckPeriod
	}
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = DefaultQuarantine
	}
	return &Controller{
		pods: pods, nodes: nodes, podLister: podLister, podIndex: podIndex, nodeLister: nodeLister,
		cfg: cfg, queue: q, logger: logger.Named("podgc"),
	}
}

// Run collects until ctx is done: a pass over every pod each CheckPeriod,
// and the nodes that disappear as they do.
func (gc *Controller) Run(ctx context.Context, workers int) {
	gc.queue.Add(sweepKey)
	controller.Run(ctx, "podgc", gc.logger, gc.queue, workers, gc.sync, gc.synced...)
}

// nodeDeleted checks a node the cache saw deleted, without quarantine: it
// existed, so only a quorum read stands between it and its pods' deletion.
func (gc *Controller) nodeDeleted(obj any) {
	if d, ok := obj.(informer.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	if n, ok := obj.(*corev1.Node); ok {
		gc.queue.Add(nodePrefix + n.Name)
	}
}

// podChanged quarantines the node of a pod bound to a node the cache lacks,
// and takes an unscheduled terminating pod at once.
func (gc *Controller) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if p.Spec.NodeName == "" {
		if p.DeletionTimestamp != nil {
			gc.queue.Add(sweepKey)
		}
		return
	}
	if _, err := gc.nodeLister.Get("", p.Spec.NodeName); apierrors.IsNotFound(err) {
		gc.queue.AddAfter(nodePrefix+p.Spec.NodeName, gc.cfg.Quarantine)
	}
}

func (gc *Controller) sync(ctx context.Context, key string) error {
	if node, ok := strings.CutPrefix(key, nodePrefix); ok {
		return gc.syncNode(ctx, node)
	}
	if key == sweepKey {
		gc.sweep(ctx)
		return controller.RequeueAfter(gc.cfg.CheckPeriod, "periodic pass")
	}
	return nil
}

// syncNode deletes the pods of node if it is gone: not in the cache, and
// not found by a quorum read.
func (gc *Controller) syncNode(ctx context.Context, node string) error {
	if _, err := gc.nodeLister.Get("", node); err == nil {
		return nil
	}
	pods, err := gc.podsOn(node)
	if err != nil || len(pods) == 0 {
		return err
	}
	if _, err := gc.nodes.Get(ctx, "", node); err == nil {
		return nil // the cache lags; the node is there
	} else if !apierrors.IsNotFound(err) {
		return fmt.Errorf("check node %s: %w", node, err)
	}
	gc.logger.Info("deleting the pods of a deleted node", zap.String("node", node), zap.Int("pods", len(pods)))
	cond := &corev1.PodCondition{
		Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: ReasonDeletionByPodGC, Message: MessageNodeGone,
	}
	return gc.forceDeleteAll(ctx, pods, cond)
}

func (gc *Controller) podsOn(node string) ([]*corev1.Pod, error) {
	objs, err := gc.podIndex.ByIndex(controller.PodNodeIndex, node)
	if err != nil {
		return nil, fmt.Errorf("pods of node %s: %w", node, err)
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// sweep is the periodic pass over every pod. Failures are logged: the next
// pass retries them, as upstream's.
func (gc *Controller) sweep(ctx context.Context) {
	pods := gc.podLister.List(nil)
	var terminated, unscheduledTerminating []*corev1.Pod
	for _, p := range pods {
		switch {
		case p.Spec.NodeName != "":
			if _, err := gc.nodeLister.Get("", p.Spec.NodeName); apierrors.IsNotFound(err) {
				gc.queue.AddAfter(nodePrefix+p.Spec.NodeName, gc.cfg.Quarantine)
			}
		case p.DeletionTimestamp != nil:
			unscheduledTerminating = append(unscheduledTerminating, p)
		}
		if isTerminated(p) {
			terminated = append(terminated, p)
		}
	}
	var errs []error
	if n := len(terminated) - gc.cfg.TerminatedPodThreshold; gc.cfg.TerminatedPodThreshold > 0 && n > 0 {
		slices.SortFunc(terminated, evictedThenOldestFirst)
		gc.logger.Info("deleting terminated pods beyond the threshold", zap.Int("pods", n), zap.Int("threshold", gc.cfg.TerminatedPodThreshold))
		errs = append(errs, gc.forceDeleteAll(ctx, terminated[:n], nil))
	}
	if len(unscheduledTerminating) > 0 {
		gc.logger.Info("deleting terminating pods that were never scheduled", zap.Int("pods", len(unscheduledTerminating)))
		errs = append(errs, gc.forceDeleteAll(ctx, unscheduledTerminating, nil))
	}
	if err := errors.Join(errs...); err != nil && ctx.Err() == nil {
		gc.logger.Warn("pod garbage collection failed; retrying at the next pass", zap.Error(err))
	}
}

// isTerminated says whether a pod has finished, as upstream's
// isPodTerminated.
func isTerminated(p *corev1.Pod) bool {
	switch p.Status.Phase {
	case corev1.PodPending, corev1.PodRunning, corev1.PodUnknown:
		return false
	}
	return true
}

// evicted says whether the kubelet evicted the pod.
func evicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

// evictedThenOldestFirst orders terminated pods for deletion, as upstream's
// byEvictionAndCreationTimestamp.
func evictedThenOldestFirst(a, b *corev1.Pod) int {
	if ea, eb := evicted(a), evicted(b); ea != eb {
		if ea {
			return -1
		}
		return 1
	}
	if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

// forceDeleteAll force-deletes pods, deleteParallelism at a time.
func (gc *Controller) forceDeleteAll(ctx context.Context, pods []*corev1.Pod, cond *corev1.PodCondition) error {
	errs := make([]error, len(pods))
	sem := make(chan struct{}, deleteParallelism)
	var wg sync.WaitGroup
	for i, p := range pods {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = gc.forceDelete(ctx, p, cond)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// forceDelete marks a pod that has not finished Failed (with cond, when
// given), so that its controller sees it end, then deletes it with grace
// 0, as upstream's markFailedAndDeletePodWithCondition.
func (gc *Controller) forceDelete(ctx context.Context, p *corev1.Pod, cond *corev1.PodCondition) error {
	logger := gc.logger.With(zap.String("namespace", p.Namespace), zap.String("pod", p.Name), zap.String("node", p.Spec.NodeName))
	if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
		cp := p.DeepCopy()
		cp.Status.Phase = corev1.PodFailed
		if cond != nil {
			setCondition(&cp.Status, *cond, metav1.Now())
		}
		if _, err := gc.pods.UpdateStatus(ctx, cp.Namespace, cp); apierrors.IsNotFound(err) {
			return nil
		} else if err != nil {
			return fmt.Errorf("mark pod %s/%s failed: %w", p.Namespace, p.Name, err)
		}
	}
	uid := p.UID
	_, err := gc.pods.Delete(ctx, p.Namespace, p.Name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64(0)), Preconditions: &metav1.Preconditions{UID: &uid},
	})
	switch {
	case err == nil:
		logger.Info("force-deleted pod")
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or replaced by a pod of the same name.
	default:
		return fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// setCondition sets c in s, keeping the transition time when its status
// does not change.
func setCondition(s *corev1.PodStatus, c corev1.PodCondition, now metav1.Time) {
	c.LastTransitionTime = now
	for i := range s.Conditions {
		if s.Conditions[i].Type != c.Type {
			continue
		}
		if s.Conditions[i].Status == c.Status {
			c.LastTransitionTime = s.Conditions[i].LastTransitionTime
		}
		s.Conditions[i] = c
		return
	}
	s.Conditions = append(s.Conditions, c)
}

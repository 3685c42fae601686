// Package nodelifecycle watches node heartbeats, as upstream's node
// lifecycle controller does: a node whose Lease and Ready condition have not
// changed for the grace period gets Ready=Unknown and the
// node.kubernetes.io/unreachable NoSchedule and NoExecute taints (a node
// reporting Ready=False gets the not-ready ones), removed once it reports
// Ready again; pods on a node with NoExecute taints are deleted once their
// tolerations run out (at once when they tolerate none of the taints).
package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// Upstream's reasons and messages.
const (
	ReasonUnknown       = "NodeStatusUnknown"
	MessageUnknown      = "Kubelet stopped posting node status."
	ReasonNeverUpdated  = "NodeStatusNeverUpdated"
	MessageNeverUpdated = "Kubelet never posted node status."
	// EventNodeNotReady is the reason of the Event on a Ready node the
	// controller marks Unknown.
	EventNodeNotReady = "NodeNotReady"
	// EventEviction is the reason of the Event on a pod evicted from a
	// node with NoExecute taints.
	EventEviction = "TaintManagerEviction"
)

// Nodes is the part of the Node client the controller uses.
type Nodes interface {
	Update(ctx context.Context, ns string, n *corev1.Node) (*corev1.Node, error)
	UpdateStatus(ctx context.Context, ns string, n *corev1.Node) (*corev1.Node, error)
}

// Pods is the part of the Pod client the controller uses.
type Pods interface {
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
	UpdateStatus(ctx context.Context, ns string, p *corev1.Pod) (*corev1.Pod, error)
}

// Config is the controller's settings.
type Config struct {
	// GracePeriod is how long a node may stay silent before it is
	// marked Unknown (--node-monitor-grace-period).
	GracePeriod time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// health is what the controller saw of a node's heartbeats.
type health struct {
	// probe is when the controller last saw a heartbeat change, on its
	// own clock (robust to the kubelet's clock skew, as upstream).
	probe     time.Time
	heartbeat time.Time // the Ready condition's lastHeartbeatTime
	renew     time.Time // the Lease's renewTime
}

// Controller watches node health. Its keys are node names.
type Controller struct {
	nodes      Nodes
	pods       Pods
	nodeLister *informer.Lister[*corev1.Node]
	leaseList  *informer.Lister[*coordinationv1.Lease]
	podIndex   informer.Indexer
	cfg        Config
	synced     []func() bool
	queue      *workqueue.Typed[string]
	// nodeEvents records node status changes (upstream's
	// node-controller), evictionEvents evictions (upstream's
	// taint-eviction-controller).
	nodeEvents, evictionEvents controller.EventRecorder
	logger                     *zap.Logger

	mu     sync.Mutex
	health map[string]*health
}

// New returns the controller, fed by f's node, lease and pod informers,
// recording nodes that become not ready with nodeEvents and evictions with
// evictionEvents.
func New(c *client.Client, f *informer.Factory, cfg Config, nodeEvents, evictionEvents controller.EventRecorder, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	nodeInf, nodeLister := informer.ForType[*corev1.Node](f)
	leaseInf, leaseLister := informer.ForType[*coordinationv1.Lease](f)
	podInf, _ := informer.ForType[*corev1.Pod](f)
	if err := controller.IndexPodsByNode(podInf); err != nil {
		return nil, fmt.Errorf("nodelifecycle: index pods: %w", err)
	}
	nc := newController(client.For[*corev1.Node](c), client.For[*corev1.Pod](c), nodeLister, leaseLister, podInf.GetIndexer(), cfg, logger, controller.NewQueue("nodelifecycle", m))
	nc.synced = []func() bool{nodeInf.HasSynced, leaseInf.HasSynced, podInf.HasSynced}
	if nodeEvents != nil {
		nc.nodeEvents = nodeEvents
	}
	if evictionEvents != nil {
		nc.evictionEvents = evictionEvents
	}
	if _, err := nodeInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { controller.Enqueue(nc.queue, obj) },
		UpdateFunc: func(_, cur any) { controller.Enqueue(nc.queue, cur) },
		DeleteFunc: func(obj any) { controller.Enqueue(nc.queue, obj) },
	}); err != nil {
		return nil, fmt.Errorf("nodelifecycle: watch nodes: %w", err)
	}
	if _, err := leaseInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    nc.leaseChanged,
		UpdateFunc: func(_, cur any) { nc.leaseChanged(cur) },
	}); err != nil {
		return nil, fmt.Errorf("nodelifecycle: watch leases: %w", err)
	}
	if _, err := podInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    nc.podChanged,
		UpdateFunc: func(_, cur any) { nc.podChanged(cur) },
	}); err != nil {
		return nil, fmt.Errorf("nodelifecycle: watch pods: %w", err)
	}
	return nc, nil
}

func newController(nodes Nodes, pods Pods, nodeLister *informer.Lister[*corev1.Node], leaseLister *informer.Lister[*coordinationv1.Lease], podIndex informer.Indexer, cfg Config, logger *zap.Logger, q *workqueue.Typed[string]) *Controller {
	if logger == nil {
		logger = zap.NewNop()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Controller{
		nodes: nodes, pods: pods, nodeLister: nodeLister, leaseList: leaseLister, podIndex: podIndex, cfg: cfg,
		queue: q, nodeEvents: controller.NopRecorder{}, evictionEvents: controller.NopRecorder{},
		logger: logger.Named("nodelifecycle"), health: map[string]*health{},
	}
}

// Run reconciles with workers goroutines until ctx is done.
func (nc *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "nodelifecycle", nc.logger, nc.queue, workers, nc.sync, nc.synced...)
}

func (nc *Controller) leaseChanged(obj any) {
	if l, ok := obj.(*coordinationv1.Lease); ok && l.Namespace == corev1.NamespaceNodeLease {
		nc.queue.Add(l.Name)
	}
}

// podChanged looks at the node of a pod that lands on a node with NoExecute
// taints.
func (nc *Controller) podChanged(obj any) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName == "" || p.DeletionTimestamp != nil {
		return
	}
	if n, err := nc.nodeLister.Get("", p.Spec.NodeName); err == nil && len(noExecute(n.Spec.Taints)) > 0 {
		nc.queue.Add(p.Spec.NodeName)
	}
}

func (nc *Controller) sync(ctx context.Context, name string) error {
	now := nc.cfg.Now()
	node, err := nc.nodeLister.Get("", name)
	if apierrors.IsNotFound(err) {
		nc.mu.Lock()
		delete(nc.health, name)
		nc.mu.Unlock()
		return nil
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	silentFor := nc.observe(node, now)
	if silentFor >= nc.cfg.GracePeriod {
		if node, err = nc.markUnknown(ctx, node, now); err != nil {
			return err
		}
	}
	if node, err = nc.syncTaints(ctx, node, now); err != nil {
		return err
	}
	if err := nc.markPodsNotReady(ctx, node, now); err != nil {
		return err
	}
	next, err := nc.evict(ctx, node, now)
	if err != nil {
		return err
	}
	if silentFor < nc.cfg.GracePeriod {
		// Look again when the grace period would run out.
		if d := nc.cfg.GracePeriod - silentFor; next == 0 || d < next {
			next = d
		}
	}
	if next > 0 {
		return controller.RequeueAfter(next, "waiting on heartbeat or toleration")
	}
	return nil
}

// observe records the node's heartbeats and returns how long it has been
// silent, on the controller's clock.
func (nc *Controller) observe(node *corev1.Node, now time.Time) time.Duration {
	var heartbeat, renew time.Time
	if c := condition(node, corev1.NodeReady); c != nil {
		heartbeat = c.LastHeartbeatTime.Time
	}
	if l, err := nc.leaseList.Get(corev1.NamespaceNodeLease, node.Name); err == nil && l.Spec.RenewTime != nil {
		renew = l.Spec.RenewTime.Time
	}
	nc.mu.Lock()
	defer nc.mu.Unlock()
	h := nc.health[node.Name]
	if h == nil {
		h = &health{probe: now, heartbeat: heartbeat, renew: renew}
		nc.health[node.Name] = h
	}
	if !heartbeat.Equal(h.heartbeat) || !renew.Equal(h.renew) {
		h.probe, h.heartbeat, h.renew = now, heartbeat, renew
	}
	return now.Sub(h.probe)
}

func condition(node *corev1.Node, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == t {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

// markUnknown sets the node's Ready and pressure conditions to Unknown.
func (nc *Controller) markUnknown(ctx context.Context, node *corev1.Node, now time.Time) (*corev1.Node, error) {
	cp := node.DeepCopy()
	changed := false
	ts := metav1.NewTime(now)
	wasReady := false
	if c := condition(node, corev1.NodeReady); c != nil && c.Status == corev1.ConditionTrue {
		wasReady = true
	}
	if condition(cp, corev1.NodeReady) == nil {
		cp.Status.Conditions = append(cp.Status.Conditions, corev1.NodeCondition{
			Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: ReasonNeverUpdated, Message: MessageNeverUpdated,
			LastHeartbeatTime: cp.CreationTimestamp, LastTransitionTime: ts,
		})
		changed = true
	}
	for _, t := range []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure} {
		c := condition(cp, t)
		if c == nil || c.Status == corev1.ConditionUnknown {
			continue
		}
		c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionUnknown, ReasonUnknown, MessageUnknown, ts
		changed = true
	}
	if !changed {
		return node, nil
	}
	nc.logger.Info("node stopped posting status; marking it Unknown", zap.String("node", node.Name))
	out, err := nc.nodes.UpdateStatus(ctx, "", cp)
	if err != nil {
		return nil, fmt.Errorf("mark node %s unknown: %w", node.Name, err)
	}
	if wasReady {
		nc.nodeEvents.Eventf(node, corev1.EventTypeNormal, EventNodeNotReady, "", "Node %s status is now: %s", node.Name, EventNodeNotReady)
	}
	return out, nil
}

// Taints the controller manages, keyed on the Ready condition.
var (
	unreachable = []corev1.Taint{
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute},
	}
	notReady = []corev1.Taint{
		{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule},
		{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoExecute},
	}
)

func managed(t corev1.Taint) bool {
	return t.Key == corev1.TaintNodeUnreachable || t.Key == corev1.TaintNodeNotReady
}

// desiredTaints are the managed taints the node's Ready condition calls for.
func desiredTaints(node *corev1.Node) []corev1.Taint {
	c := condition(node, corev1.NodeReady)
	switch {
	case c == nil:
		return nil
	case c.Status == corev1.ConditionUnknown:
		return unreachable
	case c.Status == corev1.ConditionFalse:
		return notReady
	}
	return nil
}

// syncTaints makes the node's managed taints match its Ready condition,
// keeping the time a present taint was added.
func (nc *Controller) syncTaints(ctx context.Context, node *corev1.Node, now time.Time) (*corev1.Node, error) {
	want := desiredTaints(node)
	var taints []corev1.Taint
	changed := false
	for _, t := range node.Spec.Taints {
		if managed(t) && !slices.ContainsFunc(want, func(w corev1.Taint) bool { return w.MatchTaint(&t) }) {
			changed = true
			continue
		}
		taints = append(taints, t)
	}
	for _, w := range want {
		if slices.ContainsFunc(node.Spec.Taints, func(t corev1.Taint) bool { return t.MatchTaint(&w) }) {
			continue
		}
		if w.Effect == corev1.TaintEffectNoExecute {
			ts := metav1.NewTime(now)
			w.TimeAdded = &ts
		}
		taints = append(taints, w)
		changed = true
	}
	if !changed {
		return node, nil
	}
	cp := node.DeepCopy()
	cp.Spec.Taints = taints
	nc.logger.Info("updating node taints", zap.String("node", node.Name), zap.Int("taints", len(taints)))
	out, err := nc.nodes.Update(ctx, "", cp)
	if err != nil {
		return nil, fmt.Errorf("taint node %s: %w", node.Name, err)
	}
	return out, nil
}

func noExecute(taints []corev1.Taint) []corev1.Taint {
	var out []corev1.Taint
	for _, t := range taints {
		if t.Effect == corev1.TaintEffectNoExecute {
			out = append(out, t)
		}
	}
	return out
}

// tolerates says whether tol matches taint, as upstream's
// Toleration.ToleratesTaint does for the Exists and Equal operators.
func tolerates(tol corev1.Toleration, taint corev1.Taint) bool {
	if tol.Effect != "" && tol.Effect != taint.Effect {
		return false
	}
	if tol.Key != taint.Key && (tol.Key != "" || tol.Operator != corev1.TolerationOpExists) {
		return false
	}
	switch tol.Operator {
	case corev1.TolerationOpExists:
		return true
	case "", corev1.TolerationOpEqual:
		return tol.Value == taint.Value
	}
	return false
}

// evictAt returns when a pod must leave a node with the given NoExecute
// taints: the zero time for never, now when a taint is not tolerated,
// otherwise the earliest time a toleration runs out (counted from when
// its taint was added).
func evictAt(pod *corev1.Pod, taints []corev1.Taint, now time.Time) (time.Time, bool) {
	var at time.Time
	for _, t := range taints {
		added := now
		if t.TimeAdded != nil {
			added = t.TimeAdded.Time
		}
		tolerated, forever := false, false
		var longest time.Duration
		for _, tol := range pod.Spec.Tolerations {
			if !tolerates(tol, t) {
				continue
			}
			tolerated = true
			if tol.TolerationSeconds == nil {
				forever = true
				break
			}
			longest = max(longest, time.Duration(max(*tol.TolerationSeconds, 0))*time.Second)
		}
		if !tolerated {
			return now, true
		}
		if forever {
			continue
		}
		if end := added.Add(longest); at.IsZero() || end.Before(at) {
			at = end
		}
	}
	return at, !at.IsZero()
}

// podsOf returns the cached pods bound to node that are not being deleted.
func (nc *Controller) podsOf(node string) ([]*corev1.Pod, error) {
	objs, err := nc.podIndex.ByIndex(controller.PodNodeIndex, node)
	if err != nil {
		return nil, fmt.Errorf("pods of node %s: %w", node, err)
	}
	var out []*corev1.Pod
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// markPodsNotReady sets the Ready condition of the pods of a node whose
// Ready condition is Unknown to False, as upstream's MarkPodsNotReady, so
// that Services stop sending them traffic: no kubelet is there to say.
func (nc *Controller) markPodsNotReady(ctx context.Context, node *corev1.Node, now time.Time) error {
	if c := condition(node, corev1.NodeReady); c == nil || c.Status != corev1.ConditionUnknown {
		return nil
	}
	pods, err := nc.podsOf(node.Name)
	if err != nil {
		return err
	}
	var errs []error
	for _, pod := range pods {
		i := slices.IndexFunc(pod.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.PodReady })
		if i < 0 || pod.Status.Conditions[i].Status != corev1.ConditionTrue {
			continue
		}
		cp := pod.DeepCopy()
		c := &cp.Status.Conditions[i]
		c.Status, c.LastTransitionTime = corev1.ConditionFalse, metav1.NewTime(now)
		nc.logger.Info("marking pod not ready on unreachable node", zap.String("node", node.Name), zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name))
		if _, err := nc.pods.UpdateStatus(ctx, pod.Namespace, cp); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("mark pod %s/%s not ready: %w", pod.Namespace, pod.Name, err))
		}
	}
	return errors.Join(errs...)
}

// evict deletes the pods of node whose tolerations ran out and returns how
// long until the next one does (0 for none).
func (nc *Controller) evict(ctx context.Context, node *corev1.Node, now time.Time) (time.Duration, error) {
	taints := noExecute(node.Spec.Taints)
	if len(taints) == 0 {
		return 0, nil
	}
	pods, err := nc.podsOf(node.Name)
	if err != nil {
		return 0, err
	}
	var next time.Duration
	var errs []error
	for _, pod := range pods {
		at, ok := evictAt(pod, taints, now)
		if !ok {
			continue
		}
		if wait := at.Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		nc.logger.Info("evicting pod from tainted node", zap.String("node", node.Name), zap.String("namespace", pod.Namespace), zap.String("pod", pod.Name))
		uid := pod.UID
		_, err := nc.pods.Delete(ctx, pod.Namespace, pod.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			nc.evictionEvents.Eventf(pod, corev1.EventTypeNormal, EventEviction, "", "Marking for deletion Pod %s/%s", pod.Namespace, pod.Name)
		case !apierrors.IsNotFound(err) && !apierrors.IsConflict(err):
			errs = append(errs, fmt.Errorf("evict pod %s/%s: %w", pod.Namespace, pod.Name, err))
		}
	}
	return next, errors.Join(errs...)
}

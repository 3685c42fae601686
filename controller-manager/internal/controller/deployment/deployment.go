// Package deployment rolls Deployments out through ReplicaSets: one per
// pod template (named <deployment>-<pod-template-hash>), the new one scaled
// up and the old ones down within maxSurge and maxUnavailable (or all old
// pods first, for Recreate), with revisions, history cleanup and the
// status and conditions kubectl rollout status reads.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

var deploymentKind = appsv1.SchemeGroupVersion.WithKind("Deployment")

// ReasonScalingReplicaSet is upstream's reason of the Events that say a
// ReplicaSet was scaled.
const ReasonScalingReplicaSet = "ScalingReplicaSet"

// ReplicaSetClient is the part of the ReplicaSet client the controller uses.
type ReplicaSetClient interface {
	Create(ctx context.Context, ns string, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error)
	Update(ctx context.Context, ns string, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
}

// DeploymentClient is the part of the Deployment client the controller uses.
type DeploymentClient interface {
	Get(ctx context.Context, ns, name string) (*appsv1.Deployment, error)
	Update(ctx context.Context, ns string, d *appsv1.Deployment) (*appsv1.Deployment, error)
	UpdateStatus(ctx context.Context, ns string, d *appsv1.Deployment) (*appsv1.Deployment, error)
}

// Controller reconciles Deployments.
type Controller struct {
	rss       ReplicaSetClient
	deploys   DeploymentClient
	dLister   *informer.Lister[*appsv1.Deployment]
	rsLister  *informer.Lister[*appsv1.ReplicaSet]
	podLister *informer.Lister[*corev1.Pod]
	synced    []func() bool
	queue     *workqueue.Typed[string]
	recorder  controller.EventRecorder
	logger    *zap.Logger
	now       func() time.Time
}

// New returns the controller, fed by f's informers, recording its scaling
// of ReplicaSets as Events on the Deployment.
func New(c *client.Client, f *informer.Factory, recorder controller.EventRecorder, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	dInf, dLister := informer.ForType[*appsv1.Deployment](f)
	rsInf, rsLister := informer.ForType[*appsv1.ReplicaSet](f)
	podInf, podLister := informer.ForType[*corev1.Pod](f)
	dc := newController(client.For[*appsv1.ReplicaSet](c), client.For[*appsv1.Deployment](c), dLister, rsLister, podLister, logger, controller.NewQueue("deployment", m))
	dc.synced = []func() bool{dInf.HasSynced, rsInf.HasSynced, podInf.HasSynced}
	if recorder != nil {
		dc.recorder = recorder
	}
	if _, err := dInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    dc.enqueue,
		UpdateFunc: func(_, cur any) { dc.enqueue(cur) },
		DeleteFunc: dc.enqueue,
	}); err != nil {
		return nil, fmt.Errorf("deployment: watch deployments: %w", err)
	}
	if _, err := rsInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    dc.addReplicaSet,
		UpdateFunc: dc.updateReplicaSet,
		DeleteFunc: dc.deleteReplicaSet,
	}); err != nil {
		return nil, fmt.Errorf("deployment: watch replicasets: %w", err)
	}
	if _, err := podInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		DeleteFunc: dc.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("deployment: watch pods: %w", err)
	}
	return dc, nil
}

func newController(rss ReplicaSetClient, deploys DeploymentClient, dLister *informer.Lister[*appsv1.Deployment], rsLister *informer.Lister[*appsv1.ReplicaSet], podLister *informer.Lister[*corev1.Pod], logger *zap.Logger, q *workqueue.Typed[string]) *Controller {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Controller{
		rss: rss, deploys: deploys, dLister: dLister, rsLister: rsLister, podLister: podLister,
		queue: q, recorder: controller.NopRecorder{}, logger: logger.Named("deployment"), now: time.Now,
	}
}

// Run reconciles with workers goroutines until ctx is done.
func (dc *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "deployment", dc.logger, dc.queue, workers, dc.sync, dc.synced...)
}

func (dc *Controller) enqueue(obj any) { controller.Enqueue(dc.queue, obj) }

// resolve returns the Deployment a controllerRef names, if it still exists
// with that uid.
func (dc *Controller) resolve(ns string, ref *metav1.OwnerReference) *appsv1.Deployment {
	if ref == nil || ref.Kind != deploymentKind.Kind {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != deploymentKind.Group {
		return nil
	}
	d, err := dc.dLister.Get(ns, ref.Name)
	if err != nil || d.UID != ref.UID {
		return nil
	}
	return d
}

// enqueueMatching queues the Deployments whose selector matches an orphan
// ReplicaSet, which one of them may adopt.
func (dc *Controller) enqueueMatching(rs *appsv1.ReplicaSet) {
	for _, d := range dc.dLister.ByNamespace(rs.Namespace).List(nil) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(rs.Labels)) {
			continue
		}
		dc.enqueue(d)
	}
}

func (dc *Controller) addReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		return
	}
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if d := dc.resolve(rs.Namespace, ref); d != nil {
			dc.enqueue(d)
		}
		return
	}
	if rs.DeletionTimestamp == nil {
		dc.enqueueMatching(rs)
	}
}

func (dc *Controller) updateReplicaSet(oldObj, curObj any) {
	old, ok1 := oldObj.(*appsv1.ReplicaSet)
	cur, ok2 := curObj.(*appsv1.ReplicaSet)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	if oldRef != nil && (curRef == nil || curRef.UID != oldRef.UID) {
		if d := dc.resolve(old.Namespace, oldRef); d != nil {
			dc.enqueue(d)
		}
	}
	if curRef != nil {
		if d := dc.resolve(cur.Namespace, curRef); d != nil {
			dc.enqueue(d)
		}
		return
	}
	if !labels.Equals(old.Labels, cur.Labels) || oldRef != nil {
		dc.enqueueMatching(cur)
	}
}

func (dc *Controller) deleteReplicaSet(obj any) {
	rs, ok := obj.(*appsv1.ReplicaSet)
	if !ok {
		tomb, ok := obj.(informer.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if rs, ok = tomb.Obj.(*appsv1.ReplicaSet); !ok {
			return
		}
	}
	if d := dc.resolve(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil {
		dc.enqueue(d)
	}
}

// deletePod wakes a Recreate Deployment waiting for its old pods to go.
func (dc *Controller) deletePod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, ok := obj.(informer.DeletedFinalStateUnknown)
		if !ok {
			return
		}
		if pod, ok = tomb.Obj.(*corev1.Pod); !ok {
			return
		}
	}
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != "ReplicaSet" {
		return
	}
	rs, err := dc.rsLister.Get(pod.Namespace, ref.Name)
	if err != nil || rs.UID != ref.UID {
		return
	}
	if d := dc.resolve(rs.Namespace, metav1.GetControllerOfNoCopy(rs)); d != nil && d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		dc.enqueue(d)
	}
}

func (dc *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := informer.SplitKey(key)
	if err != nil {
		return nil //nolint:nilerr // a malformed key cannot get better
	}
	cached, err := dc.dLister.Get(ns, name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s: %w", key, err)
	}
	d := cached.DeepCopy()
	logger := dc.logger.With(zap.String("key", key))

	selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || selector.Empty() {
		// Validation forbids it; never select every pod of a namespace.
		logger.Warn("invalid or empty selector; not syncing", zap.Error(err))
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			if _, err := dc.deploys.UpdateStatus(ctx, ns, d); err != nil {
				return fmt.Errorf("update status of deployment %s: %w", key, err)
			}
		}
		return nil
	}
	rsList, err := dc.claimReplicaSets(ctx, d, selector)
	if err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		// Deleted: the garbage collector takes the ReplicaSets.
		newRS, oldRSs, err := dc.replicaSetsAndRevision(ctx, d, rsList, false)
		if err != nil {
			return err
		}
		return dc.syncStatusOnly(ctx, d, newRS, oldRSs)
	}
	if err := dc.checkPausedConditions(ctx, d); err != nil {
		return err
	}
	// Paused: no rollout until resumed, but scaling goes on. A new
	// replicas count is given to the ReplicaSets before any rollout step,
	// in proportion to their sizes during a rollout.
	scaling, err := dc.isScalingEvent(ctx, d, rsList)
	if err != nil {
		return err
	}
	if d.Spec.Paused || scaling {
		return dc.syncScale(ctx, d, rsList, logger)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return dc.rolloutRecreate(ctx, d, rsList, logger)
	default:
		return dc.rolloutRolling(ctx, d, rsList, logger)
	}
}

// claimReplicaSets returns the Deployment's ReplicaSets, adopting matching
// orphans and releasing those that stopped matching.
func (dc *Controller) claimReplicaSets(ctx context.Context, d *appsv1.Deployment, selector labels.Selector) ([]*appsv1.ReplicaSet, error) {
	m := &controller.RefManager[*appsv1.ReplicaSet]{
		Owner: d, OwnerGVK: deploymentKind, Selector: selector,
		CanAdopt: controller.RecheckOwner(d, dc.deploys.Get),
		Update: func(ctx context.Context, rs *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
			return dc.rss.Update(ctx, rs.Namespace, rs)
		},
	}
	rss, err := m.Claim(ctx, dc.rsLister.ByNamespace(d.Namespace).List(nil))
	if err != nil {
		return nil, fmt.Errorf("claim replicasets of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	return rss, nil
}

// rolloutRolling scales the new ReplicaSet up and the old ones down,
// never beyond replicas+maxSurge pods nor below replicas-maxUnavailable
// available ones.
func (dc *Controller) rolloutRolling(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, logger *zap.Logger) error {
	newRS, oldRSs, err := dc.replicaSetsAndRevision(ctx, d, rsList, true)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)

	scaledUp, err := dc.reconcileNewReplicaSet(ctx, all, newRS, d, logger)
	if err != nil {
		return err
	}
	if scaledUp {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	scaledDown, err := dc.reconcileOldReplicaSets(ctx, all, activeReplicaSets(oldRSs), newRS, d, logger)
	if err != nil {
		return err
	}
	if scaledDown {
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	if complete(d, dc.calculateStatus(all, newRS, d)) {
		if err := dc.cleanup(ctx, oldRSs, d, logger); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(ctx, all, newRS, d)
}

// rolloutRecreate scales every old ReplicaSet to zero, waits for their
// pods to be gone, then scales the new one up.
func (dc *Controller) rolloutRecreate(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, logger *zap.Logger) error {
	newRS, oldRSs, err := dc.replicaSetsAndRevision(ctx, d, rsList, false)
	if err != nil {
		return err
	}
	all := append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaledDown := false
	for i, rs := range oldRSs {
		if replicasOf(rs) == 0 {
			continue
		}
		scaled, updated, err := dc.scaleReplicaSet(ctx, rs, 0, d, logger)
		if err != nil {
			return err
		}
		oldRSs[i] = updated
		scaledDown = scaledDown || scaled
	}
	if scaledDown || dc.oldPodsRunning(oldRSs) {
		all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
		return dc.syncRolloutStatus(ctx, all, newRS, d)
	}
	if newRS == nil {
		if newRS, oldRSs, err = dc.replicaSetsAndRevision(ctx, d, rsList, true); err != nil {
			return err
		}
	}
	if _, newRS, err = dc.scaleReplicaSet(ctx, newRS, deploymentReplicas(d), d, logger); err != nil {
		return err
	}
	all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	if complete(d, dc.calculateStatus(all, newRS, d)) {
		if err := dc.cleanup(ctx, oldRSs, d, logger); err != nil {
			return err
		}
	}
	return dc.syncRolloutStatus(ctx, all, newRS, d)
}

// oldPodsRunning says whether any pod of the old ReplicaSets is still
// there and not finished.
func (dc *Controller) oldPodsRunning(oldRSs []*appsv1.ReplicaSet) bool {
	for _, rs := range oldRSs {
		if rs.Status.Replicas > 0 {
			return true
		}
	}
	uids := map[string]bool{}
	ns := ""
	for _, rs := range oldRSs {
		uids[string(rs.UID)] = true
		ns = rs.Namespace
	}
	if len(uids) == 0 {
		return false
	}
	for _, p := range dc.podLister.ByNamespace(ns).List(nil) {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil || !uids[string(ref.UID)] {
			continue
		}
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			return true
		}
	}
	return false
}

func (dc *Controller) reconcileNewReplicaSet(ctx context.Context, all []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment, logger *zap.Logger) (bool, error) {
	replicas := deploymentReplicas(d)
	if replicasOf(newRS) == replicas {
		return false, nil
	}
	target := replicas
	if replicasOf(newRS) < replicas {
		var err error
		if target, err = NewRSNewReplicas(d, all, newRS); err != nil {
			return false, err
		}
	}
	scaled, updated, err := dc.scaleReplicaSet(ctx, newRS, target, d, logger)
	if err == nil {
		*newRS = *updated
	}
	return scaled, err
}

func (dc *Controller) reconcileOldReplicaSets(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet, d *appsv1.Deployment, logger *zap.Logger) (bool, error) {
	oldPods := specReplicas(oldRSs)
	if oldPods == 0 {
		return false, nil
	}
	allPods := specReplicas(all)
	minAvailable := deploymentReplicas(d) - MaxUnavailable(d)
	newUnavailable := replicasOf(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := allPods - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return false, nil
	}
	// First the old pods that are not available anyway.
	cleaned, err := dc.cleanupUnhealthyReplicas(ctx, oldRSs, d, maxScaledDown, logger)
	if err != nil {
		return false, err
	}
	all = append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS)
	scaled, err := dc.scaleDownOldReplicaSets(ctx, all, oldRSs, d, logger)
	if err != nil {
		return false, err
	}
	return cleaned+scaled > 0, nil
}

// cleanupUnhealthyReplicas scales old ReplicaSets down by their
// unavailable pods, oldest first, at most maxCleanup in all. It updates
// oldRSs in place.
func (dc *Controller) cleanupUnhealthyReplicas(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, maxCleanup int32, logger *zap.Logger) (int32, error) {
	sortByCreation(oldRSs)
	var total int32
	for i, rs := range oldRSs {
		if total >= maxCleanup {
			break
		}
		if replicasOf(rs) == 0 || replicasOf(rs) == rs.Status.AvailableReplicas {
			continue
		}
		down := min(maxCleanup-total, replicasOf(rs)-rs.Status.AvailableReplicas)
		if down <= 0 {
			continue
		}
		_, updated, err := dc.scaleReplicaSet(ctx, rs, replicasOf(rs)-down, d, logger)
		if err != nil {
			return total, err
		}
		oldRSs[i] = updated
		total += down
	}
	return total, nil
}

// scaleDownOldReplicaSets scales old ReplicaSets down, oldest first, as
// far as the available pods allow.
func (dc *Controller) scaleDownOldReplicaSets(ctx context.Context, all, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, logger *zap.Logger) (int32, error) {
	minAvailable := deploymentReplicas(d) - MaxUnavailable(d)
	available := keptAvailable(all)
	if available <= minAvailable {
		return 0, nil
	}
	budget := available - minAvailable
	sortByCreation(oldRSs)
	var total int32
	for i, rs := range oldRSs {
		if total >= budget {
			break
		}
		if replicasOf(rs) == 0 {
			continue
		}
		down := min(replicasOf(rs), budget-total)
		_, updated, err := dc.scaleReplicaSet(ctx, rs, replicasOf(rs)-down, d, logger)
		if err != nil {
			return total, err
		}
		oldRSs[i] = updated
		total += down
	}
	return total, nil
}

// scaleReplicaSet sets rs's replicas (and the desired/max annotations).
func (dc *Controller) scaleReplicaSet(ctx context.Context, rs *appsv1.ReplicaSet, n int32, d *appsv1.Deployment, logger *zap.Logger) (bool, *appsv1.ReplicaSet, error) {
	sizeChanged := replicasOf(rs) != n
	cp := rs.DeepCopy()
	annotationsChanged := setReplicasAnnotations(cp, deploymentReplicas(d), deploymentReplicas(d)+MaxSurge(d))
	if !sizeChanged && !annotationsChanged {
		return false, rs, nil
	}
	cp.Spec.Replicas = &n
	updated, err := dc.rss.Update(ctx, cp.Namespace, cp)
	if err != nil {
		return false, rs, fmt.Errorf("scale replicaset %s/%s to %d: %w", rs.Namespace, rs.Name, n, err)
	}
	if sizeChanged {
		from := replicasOf(rs)
		logger.Info("scaled replica set", zap.String("replicaset", rs.Name), zap.Int32("from", from), zap.Int32("to", n))
		direction := "up"
		if n < from {
			direction = "down"
		}
		dc.recorder.Eventf(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, "", "Scaled %s replica set %s from %d to %d", direction, rs.Name, from, n)
	}
	return sizeChanged, updated, nil
}

// replicaSetsAndRevision splits the ReplicaSets into the new one (nil
// unless it exists or create is set) and the old ones, and keeps the
// revision annotations of the new ReplicaSet and the Deployment current.
func (dc *Controller) replicaSetsAndRevision(ctx context.Context, d *appsv1.Deployment, rsList []*appsv1.ReplicaSet, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	existing := FindNewReplicaSet(d, rsList)
	var oldRSs []*appsv1.ReplicaSet
	for _, rs := range rsList {
		if existing == nil || rs.UID != existing.UID {
			oldRSs = append(oldRSs, rs)
		}
	}
	newRevision := MaxRevision(oldRSs) + 1

	if existing != nil {
		cp := existing.DeepCopy()
		changed := setNewReplicaSetAnnotations(d, cp, newRevision, true)
		if cp.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
			cp.Spec.MinReadySeconds = d.Spec.MinReadySeconds
			changed = true
		}
		newRS := existing
		if changed {
			updated, err := dc.rss.Update(ctx, cp.Namespace, cp)
			if err != nil {
				return nil, nil, fmt.Errorf("update replicaset %s/%s: %w", cp.Namespace, cp.Name, err)
			}
			newRS = updated
		}
		if err := dc.setRevision(ctx, d, newRS.Annotations[RevisionAnnotation]); err != nil {
			return nil, nil, err
		}
		if hasProgressDeadline(d) && getCondition(&d.Status, appsv1.DeploymentProgressing) == nil {
			setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonFoundNewRS, fmt.Sprintf("Found new replica set %q", newRS.Name), dc.now()))
		}
		return newRS.DeepCopy(), oldRSs, nil
	}
	if !create {
		return nil, oldRSs, nil
	}

	template := d.Spec.Template.DeepCopy()
	hash := ComputeHash(template, d.Status.CollisionCount)
	template.Labels = labels.Merge(template.Labels, labels.Set{PodTemplateHashLabel: hash})
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[PodTemplateHashLabel] = hash
	zero := int32(0)
	newRS := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{controller.NewControllerRef(d, deploymentKind)},
			Labels:          template.Labels,
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: &zero, MinReadySeconds: d.Spec.MinReadySeconds, Selector: selector, Template: *template},
	}
	n, err := NewRSNewReplicas(d, append(append([]*appsv1.ReplicaSet(nil), oldRSs...), newRS), newRS)
	if err != nil {
		return nil, nil, err
	}
	newRS.Spec.Replicas = &n
	setNewReplicaSetAnnotations(d, newRS, newRevision, false)
	created, err := dc.rss.Create(ctx, d.Namespace, newRS)
	if apierrors.IsAlreadyExists(err) {
		// Ours from an earlier sync the cache has not shown yet, or a hash
		// collision with a foreign ReplicaSet.
		cur, gerr := dc.rsLister.Get(d.Namespace, newRS.Name)
		if gerr == nil {
			if ref := metav1.GetControllerOfNoCopy(cur); ref != nil && ref.UID == d.UID && EqualIgnoreHash(&cur.Spec.Template, &d.Spec.Template) {
				return cur.DeepCopy(), oldRSs, nil
			}
			count := int32(1)
			if d.Status.CollisionCount != nil {
				count = *d.Status.CollisionCount + 1
			}
			d.Status.CollisionCount = &count
			if _, uerr := dc.deploys.UpdateStatus(ctx, d.Namespace, d); uerr != nil {
				return nil, nil, fmt.Errorf("record hash collision of deployment %s/%s: %w", d.Namespace, d.Name, uerr)
			}
		}
		return nil, nil, fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, newRS.Name, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create replicaset %s/%s: %w", d.Namespace, newRS.Name, err)
	}
	dc.logger.Info("created replica set", zap.String("deployment", d.Namespace+"/"+d.Name), zap.String("replicaset", created.Name), zap.Int32("replicas", n))
	if n > 0 {
		dc.recorder.Eventf(d, corev1.EventTypeNormal, ReasonScalingReplicaSet, "", "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	setCondition(&d.Status, newCondition(appsv1.DeploymentProgressing, corev1.ConditionTrue, ReasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.Name), dc.now()))
	if err := dc.setRevision(ctx, d, created.Annotations[RevisionAnnotation]); err != nil {
		return nil, nil, err
	}
	return created, oldRSs, nil
}

// setRevision writes the new ReplicaSet's revision on the Deployment.
func (dc *Controller) setRevision(ctx context.Context, d *appsv1.Deployment, revision string) error {
	if revision == "" || d.Annotations[RevisionAnnotation] == revision {
		return nil
	}
	cp := d.DeepCopy()
	if cp.Annotations == nil {
		cp.Annotations = map[string]string{}
	}
	cp.Annotations[RevisionAnnotation] = revision
	updated, err := dc.deploys.Update(ctx, d.Namespace, cp)
	if err != nil {
		return fmt.Errorf("set revision of deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	// Keep the status computed so far; take the new metadata.
	d.ObjectMeta = updated.ObjectMeta
	return nil
}

// cleanup deletes the oldest scaled-down ReplicaSets beyond
// revisionHistoryLimit.
func (dc *Controller) cleanup(ctx context.Context, oldRSs []*appsv1.ReplicaSet, d *appsv1.Deployment, logger *zap.Logger) error {
	if d.Spec.RevisionHistoryLimit == nil {
		return nil
	}
	var cleanable []*appsv1.ReplicaSet
	for _, rs := range oldRSs {
		if rs != nil && rs.DeletionTimestamp == nil {
			cleanable = append(cleanable, rs)
		}
	}
	diff := len(cleanable) - int(*d.Spec.RevisionHistoryLimit)
	if diff <= 0 {
		return nil
	}
	sortByRevision(cleanable)
	var errs []error
	for _, rs := range cleanable[:diff] {
		if rs.Status.Replicas != 0 || replicasOf(rs) != 0 || rs.Generation > rs.Status.ObservedGeneration {
			continue
		}
		uid := rs.UID
		if _, err := dc.rss.Delete(ctx, rs.Namespace, rs.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete old replicaset %s/%s: %w", rs.Namespace, rs.Name, err))
			continue
		}
		logger.Info("deleted old replica set", zap.String("replicaset", rs.Name), zap.Int64("revision", Revision(rs)))
	}
	return errors.Join(errs...)
}

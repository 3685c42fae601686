// Package replicaset keeps the pods of ReplicaSets and
// ReplicationControllers: as many as spec.replicas matching the selector,
// created from the template and owned through a controller
// ownerReference. One implementation serves both kinds.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
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

// BurstReplicas bounds the pods created or deleted in one sync.
const BurstReplicas = 500

// PodClient is the part of the pod client the controller uses.
type PodClient interface {
	Create(ctx context.Context, ns string, pod *corev1.Pod) (*corev1.Pod, error)
	Update(ctx context.Context, ns string, pod *corev1.Pod) (*corev1.Pod, error)
	Delete(ctx context.Context, ns, name string, opts metav1.DeleteOptions) (bool, error)
}

// OwnerClient is the part of the owners' client the controller uses.
type OwnerClient[T controller.Object] interface {
	Get(ctx context.Context, ns, name string) (T, error)
	UpdateStatus(ctx context.Context, ns string, obj T) (T, error)
}

// Controller reconciles the pods of one replicated kind.
type Controller[T controller.Object] struct {
	kind         Kind[T]
	pods         PodClient
	owners       OwnerClient[T]
	ownerLister  *informer.Lister[T]
	podLister    *informer.Lister[*corev1.Pod]
	synced       []func() bool
	queue        *workqueue.Typed[string]
	expectations *controller.Expectations
	recorder     controller.EventRecorder
	logger       *zap.Logger
	burst        int
	now          func() time.Time
}

// New returns the controller of kind, fed by f's informers, recording the
// pods it creates and deletes as Events on their owner.
func New[T controller.Object](kind Kind[T], c *client.Client, f *informer.Factory, recorder controller.EventRecorder, logger *zap.Logger, m *workqueue.Metrics) (*Controller[T], error) {
	ownerInf, ownerLister := informer.ForType[T](f)
	podInf, podLister := informer.ForType[*corev1.Pod](f)
	rc := newController(kind, client.For[*corev1.Pod](c), client.For[T](c), ownerLister, podLister, logger, controller.NewQueue(kind.Name, m))
	rc.synced = []func() bool{ownerInf.HasSynced, podInf.HasSynced}
	if recorder != nil {
		rc.recorder = recorder
	}
	if _, err := ownerInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    rc.enqueue,
		UpdateFunc: func(_, cur any) { rc.enqueue(cur) },
		DeleteFunc: rc.deleteOwner,
	}); err != nil {
		return nil, fmt.Errorf("%s: watch owners: %w", kind.Name, err)
	}
	if _, err := podInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    rc.addPod,
		UpdateFunc: rc.updatePod,
		DeleteFunc: rc.deletePod,
	}); err != nil {
		return nil, fmt.Errorf("%s: watch pods: %w", kind.Name, err)
	}
	return rc, nil
}

func newController[T controller.Object](kind Kind[T], pods PodClient, owners OwnerClient[T], ownerLister *informer.Lister[T], podLister *informer.Lister[*corev1.Pod], logger *zap.Logger, q *workqueue.Typed[string]) *Controller[T] {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Controller[T]{
		kind: kind, pods: pods, owners: owners, ownerLister: ownerLister, podLister: podLister,
		queue: q, expectations: controller.NewExpectations(), recorder: controller.NopRecorder{}, logger: logger.Named(kind.Name),
		burst: BurstReplicas, now: time.Now,
	}
}

// Run reconciles with workers goroutines until ctx is done.
func (rc *Controller[T]) Run(ctx context.Context, workers int) {
	controller.Run(ctx, rc.kind.Name, rc.logger, rc.queue, workers, rc.sync, rc.synced...)
}

func (rc *Controller[T]) enqueue(obj any) { controller.Enqueue(rc.queue, obj) }

func (rc *Controller[T]) deleteOwner(obj any) {
	key, err := informer.KeyFunc(obj)
	if err != nil {
		return
	}
	rc.expectations.Delete(key)
	rc.queue.Add(key)
}

// resolve returns the owner a controllerRef names, if it is of our kind
// and still the same object (uid).
func (rc *Controller[T]) resolve(ns string, ref *metav1.OwnerReference) (T, bool) {
	var zero T
	if ref == nil || ref.Kind != rc.kind.GVK.Kind {
		return zero, false
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.Group != rc.kind.GVK.Group {
		return zero, false
	}
	owner, err := rc.ownerLister.Get(ns, ref.Name)
	if err != nil || owner.GetUID() != ref.UID {
		return zero, false
	}
	return owner, true
}

// ownersMatching returns the owners of pod's namespace whose selector
// matches it, for an orphan to be adopted.
func (rc *Controller[T]) ownersMatching(pod *corev1.Pod) []T {
	var out []T
	for _, o := range rc.ownerLister.ByNamespace(pod.Namespace).List(nil) {
		sel, err := rc.kind.Selector(o)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		out = append(out, o)
	}
	return out
}

func (rc *Controller[T]) addPod(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	if pod.DeletionTimestamp != nil {
		// Seen for the first time already terminating (e.g. after a
		// restart): count it as a deletion so expectations settle.
		rc.deletePod(pod)
		return
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		owner, ok := rc.resolve(pod.Namespace, ref)
		if !ok {
			return
		}
		key, _ := informer.KeyFunc(owner)
		rc.expectations.CreationObserved(key)
		rc.queue.Add(key)
		return
	}
	for _, o := range rc.ownersMatching(pod) {
		rc.enqueue(o)
	}
}

func (rc *Controller[T]) updatePod(oldObj, curObj any) {
	old, ok1 := oldObj.(*corev1.Pod)
	cur, ok2 := curObj.(*corev1.Pod)
	if !ok1 || !ok2 || old.ResourceVersion == cur.ResourceVersion {
		return // resync: owners resync on their own
	}
	labelsChanged := !labels.Equals(old.Labels, cur.Labels)
	if cur.DeletionTimestamp != nil {
		rc.deletePod(cur)
		if labelsChanged {
			rc.deletePod(old)
		}
		return
	}
	curRef, oldRef := metav1.GetControllerOfNoCopy(cur), metav1.GetControllerOfNoCopy(old)
	refChanged := (curRef == nil) != (oldRef == nil) || (curRef != nil && oldRef != nil && curRef.UID != oldRef.UID)
	if refChanged && oldRef != nil {
		if owner, ok := rc.resolve(old.Namespace, oldRef); ok {
			rc.enqueue(owner)
		}
	}
	if curRef != nil {
		owner, ok := rc.resolve(cur.Namespace, curRef)
		if !ok {
			return
		}
		rc.enqueue(owner)
		// A pod that just became ready becomes available minReadySeconds
		// later: look again then.
		if mrs := rc.kind.MinReadySeconds(owner); mrs > 0 && !controller.IsPodReady(old) && controller.IsPodReady(cur) {
			key, _ := informer.KeyFunc(owner)
			rc.queue.AddAfter(key, time.Duration(mrs)*time.Second+time.Second)
		}
		return
	}
	if labelsChanged || refChanged {
		for _, o := range rc.ownersMatching(cur) {
			rc.enqueue(o)
		}
	}
}

func (rc *Controller[T]) deletePod(obj any) {
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
	if ref == nil {
		return
	}
	owner, ok := rc.resolve(pod.Namespace, ref)
	if !ok {
		return
	}
	key, _ := informer.KeyFunc(owner)
	rc.expectations.DeletionObserved(key, controller.PodKey(pod))
	rc.queue.Add(key)
}

// sync reconciles one owner: claim its pods, create or delete the
// difference when the cache can be trusted, and write the status.
func (rc *Controller[T]) sync(ctx context.Context, key string) error {
	ns, name, err := informer.SplitKey(key)
	if err != nil {
		return nil //nolint:nilerr // a malformed key cannot get better
	}
	owner, err := rc.ownerLister.Get(ns, name)
	if apierrors.IsNotFound(err) {
		rc.expectations.Delete(key)
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s: %w", rc.kind.Name, key, err)
	}
	logger := rc.logger.With(zap.String("key", key))
	selector, err := rc.kind.Selector(owner)
	if err != nil {
		logger.Warn("invalid selector; not syncing", zap.Error(err))
		return nil
	}
	satisfied := rc.expectations.Satisfied(key)

	active := controller.FilterActivePods(rc.podLister.ByNamespace(ns).List(nil))
	m := &controller.RefManager[*corev1.Pod]{
		Owner: owner, OwnerGVK: rc.kind.GVK, Selector: selector,
		CanAdopt: controller.RecheckOwner(owner, rc.owners.Get),
		Update: func(ctx context.Context, p *corev1.Pod) (*corev1.Pod, error) {
			return rc.pods.Update(ctx, p.Namespace, p)
		},
	}
	pods, claimErr := m.Claim(ctx, active)

	var manageErr error
	if satisfied && owner.GetDeletionTimestamp() == nil {
		manageErr = rc.manage(ctx, key, owner, pods, logger)
	}

	status, err := rc.computeStatus(owner, pods)
	if err != nil {
		logger.Warn("cannot compute status", zap.Error(err))
		return errors.Join(claimErr, manageErr)
	}
	if err := rc.updateStatus(ctx, owner, status); err != nil {
		return errors.Join(claimErr, manageErr, err)
	}
	replicas := rc.kind.Replicas(owner)
	if mrs := rc.kind.MinReadySeconds(owner); manageErr == nil && mrs > 0 &&
		status.ReadyReplicas == replicas && status.AvailableReplicas != replicas {
		rc.queue.AddAfter(key, time.Duration(mrs)*time.Second)
	}
	return errors.Join(claimErr, manageErr)
}

// manage creates or deletes pods so that len(pods) becomes spec.replicas.
func (rc *Controller[T]) manage(ctx context.Context, key string, owner T, pods []*corev1.Pod, logger *zap.Logger) error {
	diff := len(pods) - int(rc.kind.Replicas(owner))
	switch {
	case diff < 0:
		template, err := rc.kind.Template(owner)
		if err != nil {
			logger.Warn("invalid template; not creating pods", zap.Error(err))
			return nil
		}
		n := min(-diff, rc.burst)
		rc.expectations.ExpectCreations(key, n)
		logger.Info("creating pods", zap.Int("count", n), zap.Int("have", len(pods)), zap.Int32("want", rc.kind.Replicas(owner)))
		ok, err := controller.SlowStartBatch(n, 1, func() error {
			pod := controller.PodFromTemplate(template, owner, rc.kind.GVK)
			created, err := rc.pods.Create(ctx, owner.GetNamespace(), pod)
			if err != nil {
				// This creation will never be observed.
				rc.expectations.CreationObserved(key)
				if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
					return nil // the namespace is going away, and the owner with it
				}
				rc.recorder.Eventf(owner, corev1.EventTypeWarning, controller.FailedCreatePodReason, "", "Error creating: %v", err)
				return fmt.Errorf("create pod for %s %s: %w", rc.kind.Name, key, err)
			}
			rc.recorder.Eventf(owner, corev1.EventTypeNormal, controller.SuccessfulCreatePodReason, "", "Created pod: %s", created.Name)
			return nil
		})
		if err != nil {
			// Creations of the batches not started will not be observed.
			failed := countErrors(err)
			for range n - ok - failed {
				rc.expectations.CreationObserved(key)
			}
		}
		return err
	case diff > 0:
		n := min(diff, rc.burst)
		victims := make([]*corev1.Pod, len(pods))
		copy(victims, pods)
		controller.SortLeastValuableFirst(victims)
		victims = victims[:n]
		keys := make([]string, n)
		for i, p := range victims {
			keys[i] = controller.PodKey(p)
		}
		rc.expectations.ExpectDeletions(key, keys)
		logger.Info("deleting pods", zap.Int("count", n), zap.Int("have", len(pods)), zap.Int32("want", rc.kind.Replicas(owner)))
		errs := make([]error, n)
		parallel(n, func(i int) {
			p := victims[i]
			uid := p.UID
			_, err := rc.pods.Delete(ctx, p.Namespace, p.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
			if err == nil {
				rc.recorder.Eventf(owner, corev1.EventTypeNormal, controller.SuccessfulDeletePodReason, "", "Deleted pod: %s", p.Name)
				return
			}
			// As upstream: a delete that failed, even as NotFound (the
			// pod went before we asked, and its deletion may have been
			// observed already), will not be observed now: lower the
			// expectation so that it does not hold the controller back.
			rc.expectations.DeletionObserved(key, keys[i])
			if !apierrors.IsNotFound(err) {
				rc.recorder.Eventf(owner, corev1.EventTypeWarning, controller.FailedDeletePodReason, "", "Error deleting: %v", err)
				errs[i] = fmt.Errorf("delete pod %s of %s %s: %w", keys[i], rc.kind.Name, key, err)
			}
		})
		return errors.Join(errs...)
	}
	return nil
}

// computeStatus counts the owner's pods.
func (rc *Controller[T]) computeStatus(owner T, pods []*corev1.Pod) (Status, error) {
	template, err := rc.kind.Template(owner)
	if err != nil {
		return Status{}, err
	}
	templateLabels := labels.SelectorFromSet(template.Labels)
	mrs := rc.kind.MinReadySeconds(owner)
	now := rc.now()
	s := Status{ObservedGeneration: owner.GetGeneration()}
	for _, p := range pods {
		s.Replicas++
		if templateLabels.Matches(labels.Set(p.Labels)) {
			s.FullyLabeledReplicas++
		}
		if controller.IsPodReady(p) {
			s.ReadyReplicas++
			if controller.IsPodAvailable(p, mrs, now) {
				s.AvailableReplicas++
			}
		}
	}
	return s, nil
}

func (rc *Controller[T]) updateStatus(ctx context.Context, owner T, s Status) error {
	if rc.kind.Status(owner) == s {
		return nil
	}
	cp := owner.DeepCopyObject().(T)
	rc.kind.SetStatus(cp, s)
	_, err := rc.owners.UpdateStatus(ctx, cp.GetNamespace(), cp)
	if apierrors.IsConflict(err) {
		// The cache lags our own last write: retry once on a fresh read.
		// The counts are the pods', not the owner's, so they still hold.
		fresh, gerr := rc.owners.Get(ctx, owner.GetNamespace(), owner.GetName())
		if gerr != nil {
			return fmt.Errorf("update status of %s %s/%s: %w", rc.kind.Name, owner.GetNamespace(), owner.GetName(), gerr)
		}
		if fresh.GetUID() != owner.GetUID() {
			return nil
		}
		if fresh.GetGeneration() != owner.GetGeneration() {
			// The spec changed: recount against it.
			return fmt.Errorf("update status of %s %s/%s: %w", rc.kind.Name, owner.GetNamespace(), owner.GetName(), err)
		}
		rc.kind.SetStatus(fresh, s)
		_, err = rc.owners.UpdateStatus(ctx, fresh.GetNamespace(), fresh)
	}
	if err != nil {
		return fmt.Errorf("update status of %s %s/%s: %w", rc.kind.Name, owner.GetNamespace(), owner.GetName(), err)
	}
	return nil
}

// parallel runs fn(0..n-1) concurrently and waits for all.
func parallel(n int, fn func(i int)) {
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			defer func() { done <- struct{}{} }()
			fn(i)
		}()
	}
	for range n {
		<-done
	}
}

// countErrors counts the errors joined in err.
func countErrors(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

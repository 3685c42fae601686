// Package namespace empties terminating namespaces: it deletes every
// namespaced object in them, then removes the "kubernetes" finalizer so
// that the apiserver deletes the namespace.
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// RecheckPeriod is how long the controller waits before looking again at
// a namespace whose content is still going away (pods terminating
// gracefully, objects held by finalizers).
const RecheckPeriod = 2 * time.Second

// Controller deletes the content of terminating namespaces. Its keys are
// namespace names.
type Controller struct {
	c        *client.Client
	nss      *client.Typed[*corev1.Namespace]
	nsLister *informer.Lister[*corev1.Namespace]
	synced   []func() bool
	queue    *workqueue.Typed[string]
	logger   *zap.Logger
	// resources are the namespaced resources to empty.
	resources []schema.GroupVersionResource
}

// New returns the controller, fed by f's namespace informer.
func New(c *client.Client, f *informer.Factory, logger *zap.Logger, m *workqueue.Metrics) (*Controller, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	nsInf, nsLister := informer.ForType[*corev1.Namespace](f)
	nc := &Controller{
		c: c, nss: client.For[*corev1.Namespace](c), nsLister: nsLister,
		synced: []func() bool{nsInf.HasSynced}, queue: controller.NewQueue("namespace", m),
		logger: logger.Named("namespace"), resources: namespacedResources(),
	}
	if _, err := nsInf.AddEventHandler(informer.ResourceEventHandlerFuncs{
		AddFunc:    nc.enqueue,
		UpdateFunc: func(_, cur any) { nc.enqueue(cur) },
	}); err != nil {
		return nil, fmt.Errorf("namespace: watch namespaces: %w", err)
	}
	return nc, nil
}

// namespacedResources lists the served namespaced resources, events last
// so that what the deletions cause is recorded and then removed.
func namespacedResources() []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	var events []schema.GroupVersionResource
	for _, r := range scheme.Resources() {
		if !r.Namespaced {
			continue
		}
		if r.GVR.Resource == "events" {
			events = append(events, r.GVR)
			continue
		}
		out = append(out, r.GVR)
	}
	return append(out, events...)
}

// Run reconciles with workers goroutines until ctx is done.
func (nc *Controller) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "namespace", nc.logger, nc.queue, workers, nc.sync, nc.synced...)
}

func (nc *Controller) enqueue(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
		nc.queue.Add(ns.Name)
	}
}

func (nc *Controller) sync(ctx context.Context, name string) error {
	cached, err := nc.nsLister.Get("", name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if cached.DeletionTimestamp == nil {
		return nil
	}
	// Act on the current state, not the cache's.
	ns, err := nc.nss.Get(ctx, "", name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil {
		return nil
	}
	logger := nc.logger.With(zap.String("namespace", name))
	if !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return nc.deleteNamespace(ctx, ns)
	}

	remaining, err := nc.deleteContent(ctx, name)
	if err := nc.updateConditions(ctx, ns, remaining, err); err != nil {
		logger.Info("cannot update namespace conditions", zap.Error(err))
	}
	if err != nil {
		return err
	}
	if remaining.count > 0 {
		return controller.RequeueAfter(RecheckPeriod, "content remaining")
	}

	logger.Info("namespace empty; finalizing")
	finalized, err := nc.finalize(ctx, ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	return nc.deleteNamespace(ctx, finalized)
}

// deleteNamespace deletes a namespace that has no "kubernetes" finalizer,
// which the apiserver then removes (once its metadata finalizers are gone).
func (nc *Controller) deleteNamespace(ctx context.Context, ns *corev1.Namespace) error {
	if len(ns.Spec.Finalizers) > 0 {
		return nil // other finalizers: their owners release it
	}
	uid := ns.UID
	_, err := nc.nss.Delete(ctx, "", ns.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete namespace %s: %w", ns.Name, err)
	}
	return nil
}

// content is what is left in a namespace.
type content struct {
	count int
	// byResource counts the remaining objects per resource.
	byResource map[string]int
	// finalizers counts the remaining objects per finalizer.
	finalizers map[string]int
}

// deleteContent deletes every object of the namespace and reports what is
// still there (objects terminating gracefully or held by finalizers).
func (nc *Controller) deleteContent(ctx context.Context, ns string) (content, error) {
	left := content{byResource: map[string]int{}, finalizers: map[string]int{}}
	var errs []error
	background := metav1.DeletePropagationBackground
	for _, gvr := range nc.resources {
		list, err := nc.c.List(ctx, gvr, ns, metav1.ListOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("list %s in %s: %w", gvr.Resource, ns, err))
			continue
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s in %s: %w", gvr.Resource, ns, err))
			continue
		}
		for _, item := range items {
			acc, err := meta.Accessor(item)
			if err != nil {
				continue
			}
			gone := false
			if acc.GetDeletionTimestamp() == nil {
				uid := acc.GetUID()
				_, finished, err := nc.c.Delete(ctx, gvr, ns, acc.GetName(), metav1.DeleteOptions{
					PropagationPolicy: &background, Preconditions: &metav1.Preconditions{UID: &uid},
				})
				switch {
				case apierrors.IsNotFound(err):
					gone = true
				case err != nil:
					errs = append(errs, fmt.Errorf("delete %s %s/%s: %w", gvr.Resource, ns, acc.GetName(), err))
				default:
					gone = finished
				}
			}
			if !gone {
				left.count++
				left.byResource[gvr.GroupResource().String()]++
				for _, f := range acc.GetFinalizers() {
					left.finalizers[f]++
				}
			}
		}
	}
	return left, errors.Join(errs...)
}

// updateConditions records in the namespace's status why it is still
// there, as upstream's conditions do.
func (nc *Controller) updateConditions(ctx context.Context, ns *corev1.Namespace, left content, deleteErr error) error {
	now := metav1.Now()
	set := func(conds []corev1.NamespaceCondition, t corev1.NamespaceConditionType, st corev1.ConditionStatus, reason, msg string) []corev1.NamespaceCondition {
		for i := range conds {
			if conds[i].Type == t {
				if conds[i].Status != st {
					conds[i].LastTransitionTime = now
				}
				conds[i].Status, conds[i].Reason, conds[i].Message = st, reason, msg
				return conds
			}
		}
		return append(conds, corev1.NamespaceCondition{Type: t, Status: st, LastTransitionTime: now, Reason: reason, Message: msg})
	}
	cp := ns.DeepCopy()
	conds := cp.Status.Conditions
	if deleteErr != nil {
		conds = set(conds, corev1.NamespaceDeletionContentFailure, corev1.ConditionTrue, "ContentDeletionFailed", deleteErr.Error())
	} else {
		conds = set(conds, corev1.NamespaceDeletionContentFailure, corev1.ConditionFalse, "ContentDeleted", "All content successfully deleted, may be waiting on finalization")
	}
	if left.count > 0 {
		conds = set(conds, corev1.NamespaceContentRemaining, corev1.ConditionTrue, "SomeResourcesRemain", "Some resources are remaining: "+summary(left.byResource, "resource instances"))
	} else {
		conds = set(conds, corev1.NamespaceContentRemaining, corev1.ConditionFalse, "ContentRemoved", "All content successfully removed")
	}
	if len(left.finalizers) > 0 {
		conds = set(conds, corev1.NamespaceFinalizersRemaining, corev1.ConditionTrue, "SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: "+summary(left.finalizers, "resource instances"))
	} else {
		conds = set(conds, corev1.NamespaceFinalizersRemaining, corev1.ConditionFalse, "ContentHasNoFinalizers", "All content-preserving finalizers finished")
	}
	cp.Status.Conditions = conds
	if equalConditions(ns.Status.Conditions, conds) {
		return nil
	}
	_, err := nc.nss.UpdateStatus(ctx, "", cp)
	return err
}

func equalConditions(a, b []corev1.NamespaceCondition) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Status != b[i].Status || a[i].Reason != b[i].Reason || a[i].Message != b[i].Message {
			return false
		}
	}
	return true
}

// summary renders counts as upstream does: "pods. has 2 resource instances".
func summary(counts map[string]int, unit string) string {
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s has %d %s", k, counts[k], unit)
	}
	return strings.Join(parts, ", ")
}

// finalize removes the "kubernetes" finalizer through the namespace's
// finalize subresource (plain updates keep spec.finalizers).
func (nc *Controller) finalize(ctx context.Context, ns *corev1.Namespace) (*corev1.Namespace, error) {
	cp := ns.DeepCopy()
	cp.Spec.Finalizers = slices.DeleteFunc(cp.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	obj, err := nc.c.UpdateSubresource(ctx, nc.nss.GVR(), "", "finalize", cp, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
	}
	fin, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil, fmt.Errorf("finalize namespace %s: got %T", ns.Name, obj)
	}
	return fin, nil
}

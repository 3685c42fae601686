// Package garbagecollector deletes objects whose owners are gone, as
// upstream's garbage collector does: a graph of ownerReferences built from
// informers; background deletion of dependents whose owners all vanished;
// the "orphan" finalizer (remove the ownerReferences to the owner from its
// dependents, then the finalizer) and the "foregroundDeletion" finalizer
// (delete the dependents, wait for those with blockOwnerDeletion, then
// remove the finalizer).
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
	"github.com/coxswain/coxswain/pkg/api/scheme"
	"github.com/coxswain/coxswain/pkg/client"
	"github.com/coxswain/coxswain/pkg/informer"
	"github.com/coxswain/coxswain/pkg/workqueue"
)

// ignoredResources are never watched, as upstream's defaults
// (garbagecollector.DefaultIgnoredResources): events are numerous,
// short-lived, and neither own nor are owned in practice.
var ignoredResources = map[schema.GroupResource]bool{
	{Resource: "events"}:                         true,
	{Group: "events.k8s.io", Resource: "events"}: true,
}

// Resources returns what the collector watches: every served resource
// (each supports list, watch and delete, as upstream's GC requires of the
// resources it monitors; subresources are not resources of their own)
// but the ignored ones.
func Resources() []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	for _, r := range scheme.Resources() {
		if !ignoredResources[r.GVR.GroupResource()] {
			out = append(out, r.GVR)
		}
	}
	return out
}

// API is the part of the client the collector uses.
type API interface {
	Get(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, opts metav1.GetOptions) (runtime.Object, error)
	Update(ctx context.Context, gvr schema.GroupVersionResource, ns string, obj runtime.Object, opts metav1.UpdateOptions) (runtime.Object, error)
	Delete(ctx context.Context, gvr schema.GroupVersionResource, ns, name string, opts metav1.DeleteOptions) (runtime.Object, bool, error)
}

// Collector is the garbage collector. Its keys are object uids.
type Collector struct {
	api    API
	graph  *graph
	synced []func() bool
	queue  *workqueue.Typed[string]
	logger *zap.Logger
}

// New returns the collector, fed by f's informers over Resources(): shared
// with the other controllers where they watch the same resource.
func New(c *client.Client, f *informer.Factory, logger *zap.Logger, m *workqueue.Metrics) (*Collector, error) {
	gc := newCollector(c, logger, controller.NewQueue("garbagecollector", m))
	for _, gvr := range Resources() {
		inf := f.ForResource(gvr)
		gc.synced = append(gc.synced, inf.HasSynced)
		if _, err := inf.AddEventHandler(informer.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { gc.observe(gvr, obj) },
			UpdateFunc: func(_, cur any) { gc.observe(gvr, cur) },
			DeleteFunc: gc.forget,
		}); err != nil {
			return nil, fmt.Errorf("garbagecollector: watch %s: %w", gvr.Resource, err)
		}
	}
	return gc, nil
}

func newCollector(api API, logger *zap.Logger, q *workqueue.Typed[string]) *Collector {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Collector{api: api, graph: newGraph(), queue: q, logger: logger.Named("garbagecollector")}
}

// Run collects with workers goroutines until ctx is done.
func (gc *Collector) Run(ctx context.Context, workers int) {
	controller.Run(ctx, "garbagecollector", gc.logger, gc.queue, workers, gc.sync, gc.synced...)
}

func (gc *Collector) enqueue(uids []types.UID) {
	for _, uid := range uids {
		gc.queue.Add(string(uid))
	}
}

func (gc *Collector) observe(gvr schema.GroupVersionResource, obj any) {
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	id := identity{GVR: gvr, Namespace: acc.GetNamespace(), Name: acc.GetName(), UID: acc.GetUID()}
	gc.enqueue(gc.graph.upsert(id, acc.GetOwnerReferences(), acc.GetFinalizers(), acc.GetDeletionTimestamp() != nil))
}

func (gc *Collector) forget(obj any) {
	if d, ok := obj.(informer.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	gc.enqueue(gc.graph.remove(acc.GetUID()))
}

func (gc *Collector) sync(ctx context.Context, key string) error {
	n := gc.graph.get(types.UID(key))
	if n == nil {
		return nil
	}
	switch {
	case n.orphaning():
		return gc.orphanDependents(ctx, n)
	case n.deletingDependents():
		return gc.deleteDependents(ctx, n)
	case n.deleting:
		return nil // going away already; nothing waits on us
	default:
		return gc.attemptToDelete(ctx, n)
	}
}

// ownerState classifies an owner as upstream does.
type ownerState int

const (
	solid    ownerState = iota // exists and is not waiting on its dependents
	dangling                   // gone, or replaced by an object with another uid
	waiting                    // in foreground deletion
)

// ownerIdentity resolves an ownerReference of n to an API location; ok is
// false for kinds the apiserver does not serve (those owners count as solid:
// the collector cannot tell that they are gone).
func ownerIdentity(n *node, r metav1.OwnerReference) (identity, bool) {
	gv, err := schema.ParseGroupVersion(r.APIVersion)
	if err != nil {
		return identity{}, false
	}
	res, ok := scheme.LookupKind(gv.WithKind(r.Kind))
	if !ok {
		return identity{}, false
	}
	id := identity{GVR: res.GVR, Name: r.Name, UID: r.UID}
	if res.Namespaced {
		id.Namespace = n.Namespace
	}
	return id, true
}

// classify finds out, preferring the graph and reading the API when the
// owner was never observed, whether an owner exists.
func (gc *Collector) classify(ctx context.Context, n *node, r metav1.OwnerReference) (ownerState, error) {
	if on := gc.graph.get(r.UID); on != nil {
		if on.deletingDependents() {
			return waiting, nil
		}
		return solid, nil
	}
	id, ok := ownerIdentity(n, r)
	if !ok {
		return solid, nil
	}
	obj, err := gc.api.Get(ctx, id.GVR, id.Namespace, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return dangling, nil
	}
	if err != nil {
		return solid, fmt.Errorf("get owner %s %s/%s: %w", id.GVR.Resource, id.Namespace, id.Name, err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return solid, err
	}
	switch {
	case acc.GetUID() != r.UID:
		return dangling, nil
	case acc.GetDeletionTimestamp() != nil && slices.Contains(acc.GetFinalizers(), metav1.FinalizerDeleteDependents):
		return waiting, nil
	}
	return solid, nil
}

// attemptToDelete deletes n when its owners are all gone or deleting in
// the foreground, and removes the references to such owners when others
// remain, as upstream's attemptToDeleteItem.
func (gc *Collector) attemptToDelete(ctx context.Context, n *node) error {
	if len(n.owners) == 0 {
		return nil
	}
	var solids, gone []types.UID
	waitingOwners := 0
	for _, r := range n.owners {
		st, err := gc.classify(ctx, n, r)
		if err != nil {
			return err
		}
		switch st {
		case solid:
			solids = append(solids, r.UID)
		case dangling:
			gone = append(gone, r.UID)
		case waiting:
			waitingOwners++
			gone = append(gone, r.UID)
		}
	}
	logger := gc.logger.With(zap.String("resource", n.GVR.Resource), zap.String("namespace", n.Namespace), zap.String("name", n.Name))
	if len(solids) > 0 {
		if len(gone) == 0 {
			return nil
		}
		logger.Info("removing references to deleted owners", zap.Int("owners", len(gone)))
		return gc.removeOwnerRefs(ctx, n.identity, gone)
	}
	policy := metav1.DeletePropagationBackground
	if waitingOwners > 0 && gc.graph.hasDependents(n.UID) {
		// An owner waits in the foreground: so do we, on our own dependents.
		policy = metav1.DeletePropagationForeground
	}
	logger.Info("deleting object whose owners are gone", zap.String("propagation", string(policy)))
	return gc.delete(ctx, n.identity, policy)
}

func (gc *Collector) delete(ctx context.Context, id identity, policy metav1.DeletionPropagation) error {
	uid := id.UID
	_, _, err := gc.api.Delete(ctx, id.GVR, id.Namespace, id.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete %s %s/%s: %w", id.GVR.Resource, id.Namespace, id.Name, err)
	}
	return nil
}

// mutate reads id afresh, applies change and writes it back when change
// says so. A missing or replaced object is not an error.
func (gc *Collector) mutate(ctx context.Context, id identity, change func(metav1.Object) bool) error {
	obj, err := gc.api.Get(ctx, id.GVR, id.Namespace, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get %s %s/%s: %w", id.GVR.Resource, id.Namespace, id.Name, err)
	}
	acc, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if acc.GetUID() != id.UID || !change(acc) {
		return nil
	}
	if _, err := gc.api.Update(ctx, id.GVR, id.Namespace, obj, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("update %s %s/%s: %w", id.GVR.Resource, id.Namespace, id.Name, err)
	}
	return nil
}

func (gc *Collector) removeOwnerRefs(ctx context.Context, id identity, owners []types.UID) error {
	return gc.mutate(ctx, id, func(acc metav1.Object) bool {
		refs := acc.GetOwnerReferences()
		kept := slices.DeleteFunc(slices.Clone(refs), func(r metav1.OwnerReference) bool { return slices.Contains(owners, r.UID) })
		if len(kept) == len(refs) {
			return false
		}
		if len(kept) == 0 {
			kept = nil
		}
		acc.SetOwnerReferences(kept)
		return true
	})
}

func (gc *Collector) removeFinalizer(ctx context.Context, id identity, finalizer string) error {
	return gc.mutate(ctx, id, func(acc metav1.Object) bool {
		fs := acc.GetFinalizers()
		kept := slices.DeleteFunc(slices.Clone(fs), func(f string) bool { return f == finalizer })
		if len(kept) == len(fs) {
			return false
		}
		if len(kept) == 0 {
			kept = nil
		}
		acc.SetFinalizers(kept)
		return true
	})
}

// orphanDependents removes the references to n from its dependents, then
// n's orphan finalizer.
func (gc *Collector) orphanDependents(ctx context.Context, n *node) error {
	var errs []error
	for _, dep := range gc.graph.dependentsOf(n.UID) {
		if err := gc.removeOwnerRefs(ctx, dep.identity, []types.UID{n.UID}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("orphan dependents of %s %s/%s: %w", n.GVR.Resource, n.Namespace, n.Name, err)
	}
	gc.logger.Info("orphaned dependents", zap.String("resource", n.GVR.Resource), zap.String("namespace", n.Namespace), zap.String("name", n.Name))
	return gc.removeFinalizer(ctx, n.identity, metav1.FinalizerOrphanDependents)
}

// deleteDependents drives n's foreground deletion: its dependents are
// deleted (by their own attempts, which see n waiting); once none that
// blocks owner deletion is left, n's finalizer goes.
func (gc *Collector) deleteDependents(ctx context.Context, n *node) error {
	blocking := 0
	for _, dep := range gc.graph.dependentsOf(n.UID) {
		if r, ok := dep.ownerRef(n.UID); ok && blocks(r) {
			blocking++
		}
		if !dep.deleting {
			gc.queue.Add(string(dep.UID))
		}
	}
	if blocking > 0 {
		return nil // each blocking dependent's deletion requeues n
	}
	gc.logger.Info("dependents deleted; finalizing", zap.String("resource", n.GVR.Resource), zap.String("namespace", n.Namespace), zap.String("name", n.Name))
	return gc.removeFinalizer(ctx, n.identity, metav1.FinalizerDeleteDependents)
}

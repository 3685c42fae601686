package core

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
)

// NamespaceDeleter keeps a namespace whose spec.finalizers are not empty,
// in phase Terminating, until the namespace controller has emptied it.
type NamespaceDeleter struct{}

// Terminate implements generic.Deleter.
func (NamespaceDeleter) Terminate(obj runtime.Object, _ *metav1.DeleteOptions, _ time.Time) bool {
	ns, ok := obj.(*corev1.Namespace)
	if !ok || len(ns.Spec.Finalizers) == 0 {
		return false
	}
	changed := ns.Status.Phase != corev1.NamespaceTerminating
	ns.Status.Phase = corev1.NamespaceTerminating
	return changed || ns.DeletionTimestamp != nil
}

// Namespaces checks that the namespace of a new object exists and is not
// terminating.
type Namespaces struct{ Store *generic.Store }

// CheckNamespace implements generic.NamespaceChecker.
func (n Namespaces) CheckNamespace(ctx context.Context, name string) error {
	var ns *corev1.Namespace
	if e, ok, err := n.Store.Cache.Get(ctx, n.Store.Key("", name), 0); err == nil && ok {
		if obj, err := e.Object(); err == nil {
			ns, _ = obj.(*corev1.Namespace)
		}
	}
	if ns == nil {
		// The cache may lag a namespace created a moment ago.
		obj, err := n.Store.Get(ctx, "", name, "")
		if err != nil {
			if apierrors.IsNotFound(err) {
				return apierrors.NewNotFound(corev1.Resource("namespaces"), name)
			}
			return err
		}
		ns, _ = obj.(*corev1.Namespace)
	}
	if ns != nil && (ns.DeletionTimestamp != nil || ns.Status.Phase == corev1.NamespaceTerminating) {
		err := apierrors.NewForbidden(corev1.Resource("namespaces"), name, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", name))
		err.ErrStatus.Reason = metav1.StatusReasonForbidden
		err.ErrStatus.Details.Causes = append(err.ErrStatus.Details.Causes, metav1.StatusCause{Type: corev1.NamespaceTerminatingCause, Message: err.ErrStatus.Message, Field: "metadata.namespace"})
		return err
	}
	return nil
}

// Finalize implements namespaces/finalize: it sets spec.finalizers, which
// plain updates keep, so that the namespace controller can release a
// terminating namespace.
func Finalize(ctx context.Context, namespaces *generic.Store, name string, obj runtime.Object, dryRun bool) (runtime.Object, error) {
	in, ok := obj.(*corev1.Namespace)
	if !ok {
		return nil, apierrors.NewBadRequest("finalize takes a Namespace")
	}
	return namespaces.GuaranteedUpdate(ctx, "", name, generic.SystemUpdate, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		ns := cur.(*corev1.Namespace)
		ns.Spec.Finalizers = in.Spec.Finalizers
		return ns, nil
	})
}

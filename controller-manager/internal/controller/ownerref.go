package controller

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Object is a served API object: *corev1.Pod, *appsv1.ReplicaSet, ...
type Object interface {
	runtime.Object
	metav1.Object
}

// NewControllerRef returns the ownerReference that makes owner the
// controller of an object.
func NewControllerRef(owner metav1.Object, gvk schema.GroupVersionKind) metav1.OwnerReference {
	t := true
	return metav1.OwnerReference{
		APIVersion:         gvk.GroupVersion().String(),
		Kind:               gvk.Kind,
		Name:               owner.GetName(),
		UID:                owner.GetUID(),
		Controller:         &t,
		BlockOwnerDeletion: &t,
	}
}

// RefManager claims for one owner the objects that are its: those it
// controls and its selector matches, plus matching orphans, which it adopts.
// Objects it controls that its selector no longer matches are released.
type RefManager[T Object] struct {
	Owner    metav1.Object
	OwnerGVK schema.GroupVersionKind
	Selector labels.Selector
	// CanAdopt is called once before the first adoption or release; an
	// error (the owner is gone or being deleted, checked by a fresh read)
	// stops them. Nil allows them.
	CanAdopt func(ctx context.Context) error
	// Update writes a changed object, guarded by its resourceVersion.
	Update func(ctx context.Context, obj T) (T, error)

	checked  bool
	checkErr error
}

func (m *RefManager[T]) canAdopt(ctx context.Context) error {
	if m.CanAdopt == nil {
		return nil
	}
	if !m.checked {
		m.checked = true
		m.checkErr = m.CanAdopt(ctx)
	}
	return m.checkErr
}

// Claim returns the objects of objs that belong to the owner, adopting and
// releasing as needed. Objects it failed to adopt are left out; the errors
// are returned together.
func (m *RefManager[T]) Claim(ctx context.Context, objs []T) ([]T, error) {
	var claimed []T
	var errs []error
	for _, obj := range objs {
		ok, err := m.claimOne(ctx, obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			claimed = append(claimed, obj)
		}
	}
	return claimed, errors.Join(errs...)
}

func (m *RefManager[T]) claimOne(ctx context.Context, obj T) (bool, error) {
	matches := m.Selector.Matches(labels.Set(obj.GetLabels()))
	if ref := metav1.GetControllerOfNoCopy(obj); ref != nil {
		if ref.UID != m.Owner.GetUID() {
			return false, nil // someone else's
		}
		if matches {
			return true, nil
		}
		if m.Owner.GetDeletionTimestamp() != nil || obj.GetDeletionTimestamp() != nil {
			return false, nil
		}
		if err := m.release(ctx, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return false, nil
			}
			return false, err
		}
		return false, nil
	}
	if !matches || m.Owner.GetDeletionTimestamp() != nil || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	if err := m.adopt(ctx, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func (m *RefManager[T]) adopt(ctx context.Context, obj T) error {
	if err := m.canAdopt(ctx); err != nil {
		return fmt.Errorf("adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	cp := obj.DeepCopyObject().(T)
	cp.SetOwnerReferences(append(cp.GetOwnerReferences(), NewControllerRef(m.Owner, m.OwnerGVK)))
	if _, err := m.Update(ctx, cp); err != nil {
		return fmt.Errorf("adopt %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func (m *RefManager[T]) release(ctx context.Context, obj T) error {
	if err := m.canAdopt(ctx); err != nil {
		return fmt.Errorf("release %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	cp := obj.DeepCopyObject().(T)
	var refs []metav1.OwnerReference
	for _, r := range cp.GetOwnerReferences() {
		if r.UID != m.Owner.GetUID() {
			refs = append(refs, r)
		}
	}
	cp.SetOwnerReferences(refs)
	if _, err := m.Update(ctx, cp); err != nil {
		return fmt.Errorf("release %s/%s: %w", obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

// RecheckOwner returns a CanAdopt function that reads the owner afresh
// through get and refuses when it is gone, replaced (another uid) or being
// deleted: a stale cache must not make a dying owner adopt.
func RecheckOwner[T Object](owner metav1.Object, get func(ctx context.Context, ns, name string) (T, error)) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		fresh, err := get(ctx, owner.GetNamespace(), owner.GetName())
		if err != nil {
			return fmt.Errorf("recheck owner %s/%s: %w", owner.GetNamespace(), owner.GetName(), err)
		}
		if fresh.GetUID() != owner.GetUID() {
			return fmt.Errorf("owner %s/%s was replaced (uid %s, want %s)", owner.GetNamespace(), owner.GetName(), fresh.GetUID(), owner.GetUID())
		}
		if fresh.GetDeletionTimestamp() != nil {
			return fmt.Errorf("owner %s/%s is being deleted", owner.GetNamespace(), owner.GetName())
		}
		return nil
	}
}

package generic

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/coxswain/coxswain/apiserver/internal/storage/etcd"
)

// Delete deletes an object, or marks it terminating when its kind deletes
// gracefully or it carries finalizers. finished says whether it is gone.
func (s *Store) Delete(ctx context.Context, ns, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if err := s.checkRequest(ns, name, true); err != nil {
		return nil, false, err
	}
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if opts.GracePeriodSeconds != nil && *opts.GracePeriodSeconds < 0 {
		return nil, false, apierrors.NewBadRequest("gracePeriodSeconds must be non-negative")
	}
	if opts.PropagationPolicy != nil {
		switch *opts.PropagationPolicy {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy: Unsupported value: %q: supported values: \"Foreground\", \"Background\", \"Orphan\"", *opts.PropagationPolicy))
		}
	}
	dryRun := len(opts.DryRun) > 0
	key := s.Key(ns, name)
	for attempt := 0; attempt < 100; attempt++ {
		kv, ok, err := s.Storage.Get(ctx, key, 0)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, apierrors.NewNotFound(s.gr(), name)
		}
		cur, err := s.decode(kv)
		if err != nil {
			return nil, false, err
		}
		acc, _ := meta.Accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != acc.GetUID() {
				return nil, false, apierrors.NewConflict(s.gr(), name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, acc.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != acc.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(s.gr(), name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, acc.GetResourceVersion()))
			}
		}
		obj := cur.DeepCopyObject()
		oacc, _ := meta.Accessor(obj)
		changed := addPropagationFinalizer(oacc, opts.PropagationPolicy)
		stay := len(oacc.GetFinalizers()) > 0
		now := s.Now()
		if s.Deleter != nil && s.Deleter.Terminate(obj, opts, now) {
			stay, changed = true, true
		}
		if stay {
			if oacc.GetDeletionTimestamp() == nil {
				ts := metav1.NewTime(now.Truncate(time.Second))
				oacc.SetDeletionTimestamp(&ts)
				if oacc.GetDeletionGracePeriodSeconds() == nil {
					zero := int64(0)
					oacc.SetDeletionGracePeriodSeconds(&zero)
				}
				changed = true
			}
			if !changed {
				return cur, false, nil
			}
			if dryRun {
				return obj, false, nil
			}
			raw, err := etcd.Encode(s.Resource.GVK(), obj)
			if err != nil {
				return nil, false, apierrors.NewInternalError(err)
			}
			rev, ok, err := s.Storage.Update(ctx, key, kv.ModRevision, raw, nil, nil)
			if err != nil {
				return nil, false, err
			}
			if !ok {
				continue
			}
			_ = etcd.SetResourceVersion(obj, rev)
			return obj, false, nil
		}
		if dryRun {
			return cur, true, nil
		}
		var held []string
		if s.Reserver != nil {
			held = s.Reserver.Held(cur)
		}
		rev, ok, err := s.Storage.Delete(ctx, key, kv.ModRevision, held)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			continue
		}
		_ = etcd.SetResourceVersion(cur, rev)
		return cur, true, nil
	}
	return nil, false, apierrors.NewConflict(s.gr(), name, errors.New(conflictMsg))
}

// addPropagationFinalizer records the propagation policy as upstream does:
// orphan and foregroundDeletion finalizers the garbage collector acts on.
func addPropagationFinalizer(acc metav1.Object, policy *metav1.DeletionPropagation) bool {
	if policy == nil || acc.GetDeletionTimestamp() != nil {
		return false
	}
	var want string
	switch *policy {
	case metav1.DeletePropagationOrphan:
		want = metav1.FinalizerOrphanDependents
	case metav1.DeletePropagationForeground:
		want = metav1.FinalizerDeleteDependents
	default:
		return false
	}
	for _, f := range acc.GetFinalizers() {
		if f == want {
			return false
		}
	}
	acc.SetFinalizers(append(acc.GetFinalizers(), want))
	return true
}

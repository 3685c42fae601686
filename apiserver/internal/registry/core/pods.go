package core

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/coxswain/coxswain/apiserver/internal/registry/generic"
)

// PodDeleter makes deleting a pod that runs on a node graceful: the pod
// stays, with deletionTimestamp and deletionGracePeriodSeconds, until its
// kubelet has stopped the containers and deletes it with grace 0. A pod that
// was never bound, or has finished, goes at once.
type PodDeleter struct{}

// Terminate implements generic.Deleter.
func (PodDeleter) Terminate(obj runtime.Object, opts *metav1.DeleteOptions, now time.Time) bool {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	grace := int64(corev1.DefaultTerminationGracePeriodSeconds)
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = *pod.Spec.TerminationGracePeriodSeconds
	}
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if pod.Spec.NodeName == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed || grace == 0 {
		if pod.DeletionTimestamp != nil && len(pod.Finalizers) > 0 {
			zero := int64(0)
			pod.DeletionGracePeriodSeconds = &zero
			return true
		}
		return false
	}
	if pod.DeletionTimestamp != nil && pod.DeletionGracePeriodSeconds != nil && *pod.DeletionGracePeriodSeconds <= grace {
		// Already terminating with a grace period at least as short.
		return true
	}
	ts := metav1.NewTime(now.Add(time.Duration(grace) * time.Second).Truncate(time.Second))
	pod.DeletionTimestamp = &ts
	pod.DeletionGracePeriodSeconds = &grace
	return true
}

// Bind implements pods/binding: sets spec.nodeName once and records the
// PodScheduled condition.
func Bind(ctx context.Context, pods *generic.Store, ns string, b *corev1.Binding, dryRun bool) (runtime.Object, error) {
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), b.Name,
			field.ErrorList{field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"})})
	}
	if b.Target.Name == "" {
		return nil, apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Binding").GroupKind(), b.Name,
			field.ErrorList{field.Required(field.NewPath("target", "name"), "")})
	}
	if b.Namespace != "" && b.Namespace != ns {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	return pods.GuaranteedUpdate(ctx, ns, b.Name, generic.SystemUpdate, dryRun, func(cur runtime.Object) (runtime.Object, error) {
		pod := cur.(*corev1.Pod)
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), b.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", b.Name))
		}
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), b.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(corev1.Resource("pods/binding"), b.Name, fmt.Errorf("pod %s is already assigned to node %q", b.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()})
		return pod, nil
	})
}

func setCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status == c.Status {
				c.LastTransitionTime = st.Conditions[i].LastTransitionTime
			}
			st.Conditions[i] = c
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// Evict implements pods/eviction: deletes the pod with the eviction's
// delete options. (PodDisruptionBudgets are checked once a disruption
// controller maintains their status.)
func Evict(ctx context.Context, pods *generic.Store, ns, name string, ev *policyv1.Eviction) (runtime.Object, error) {
	if ev.Name != "" && ev.Name != name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object: %s vs %s", name, ev.Name))
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := pods.Delete(ctx, ns, name, opts); err != nil {
		return nil, err
	}
	st := &metav1.Status{Status: metav1.StatusSuccess, Code: 201}
	st.Kind, st.APIVersion = "Status", "v1"
	return st, nil
}

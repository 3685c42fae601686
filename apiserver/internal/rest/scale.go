package rest

import (
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// scaleFrom builds the Scale of a Deployment, ReplicaSet, StatefulSet or
// ReplicationController, as upstream's scale subresource does.
func scaleFrom(obj runtime.Object) (*autoscalingv1.Scale, error) {
	var (
		om       metav1.ObjectMeta
		replicas *int32
		status   int32
		selector string
	)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		om, replicas, status = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas
		selector = selectorString(o.Spec.Selector)
	case *appsv1.ReplicaSet:
		om, replicas, status = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas
		selector = selectorString(o.Spec.Selector)
	case *appsv1.StatefulSet:
		om, replicas, status = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas
		selector = selectorString(o.Spec.Selector)
	case *corev1.ReplicationController:
		om, replicas, status = o.ObjectMeta, o.Spec.Replicas, o.Status.Replicas
		selector = labels.SelectorFromSet(o.Spec.Selector).String()
	default:
		return nil, apierrors.NewBadRequest("the object has no scale subresource")
	}
	s := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
		ObjectMeta: metav1.ObjectMeta{Name: om.Name, Namespace: om.Namespace, UID: om.UID,
			ResourceVersion: om.ResourceVersion, CreationTimestamp: om.CreationTimestamp},
		Status: autoscalingv1.ScaleStatus{Replicas: status, Selector: selector},
	}
	if replicas != nil {
		s.Spec.Replicas = *replicas
	}
	return s, nil
}

func selectorString(sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return ""
	}
	return s.String()
}

package replicaset

import (
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/coxswain/coxswain/controller-manager/internal/controller"
)

// Status is the part of a ReplicaSet's or ReplicationController's status
// the controller computes.
type Status struct {
	Replicas             int32
	FullyLabeledReplicas int32
	ReadyReplicas        int32
	AvailableReplicas    int32
	ObservedGeneration   int64
}

// Kind adapts a replicated kind (ReplicaSet, ReplicationController) to the
// shared controller.
type Kind[T controller.Object] struct {
	// Name names the controller in logs and metrics.
	Name            string
	GVK             schema.GroupVersionKind
	Selector        func(T) (labels.Selector, error)
	Replicas        func(T) int32
	MinReadySeconds func(T) int32
	Template        func(T) (*corev1.PodTemplateSpec, error)
	Status          func(T) Status
	// SetStatus writes s into obj, a copy the controller owns.
	SetStatus func(obj T, s Status)
}

// ReplicaSetKind is the ReplicaSet adapter.
var ReplicaSetKind = Kind[*appsv1.ReplicaSet]{
	Name: "replicaset",
	GVK:  appsv1.SchemeGroupVersion.WithKind("ReplicaSet"),
	Selector: func(rs *appsv1.ReplicaSet) (labels.Selector, error) {
		if rs.Spec.Selector == nil {
			return nil, errors.New("spec.selector is not set")
		}
		s, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("spec.selector: %w", err)
		}
		if s.Empty() {
			return nil, errors.New("spec.selector is empty")
		}
		return s, nil
	},
	Replicas: func(rs *appsv1.ReplicaSet) int32 {
		if rs.Spec.Replicas == nil {
			return 1
		}
		return *rs.Spec.Replicas
	},
	MinReadySeconds: func(rs *appsv1.ReplicaSet) int32 { return rs.Spec.MinReadySeconds },
	Template:        func(rs *appsv1.ReplicaSet) (*corev1.PodTemplateSpec, error) { return &rs.Spec.Template, nil },
	Status: func(rs *appsv1.ReplicaSet) Status {
		return Status{
			Replicas: rs.Status.Replicas, FullyLabeledReplicas: rs.Status.FullyLabeledReplicas,
			ReadyReplicas: rs.Status.ReadyReplicas, AvailableReplicas: rs.Status.AvailableReplicas,
			ObservedGeneration: rs.Status.ObservedGeneration,
		}
	},
	SetStatus: func(rs *appsv1.ReplicaSet, s Status) {
		rs.Status.Replicas = s.Replicas
		rs.Status.FullyLabeledReplicas = s.FullyLabeledReplicas
		rs.Status.ReadyReplicas = s.ReadyReplicas
		rs.Status.AvailableReplicas = s.AvailableReplicas
		rs.Status.ObservedGeneration = s.ObservedGeneration
	},
}

// ReplicationControllerKind is the ReplicationController adapter.
var ReplicationControllerKind = Kind[*corev1.ReplicationController]{
	Name: "replicationcontroller",
	GVK:  corev1.SchemeGroupVersion.WithKind("ReplicationController"),
	Selector: func(rc *corev1.ReplicationController) (labels.Selector, error) {
		if len(rc.Spec.Selector) == 0 {
			return nil, errors.New("spec.selector is empty")
		}
		return labels.SelectorFromSet(rc.Spec.Selector), nil
	},
	Replicas: func(rc *corev1.ReplicationController) int32 {
		if rc.Spec.Replicas == nil {
			return 1
		}
		return *rc.Spec.Replicas
	},
	MinReadySeconds: func(rc *corev1.ReplicationController) int32 { return rc.Spec.MinReadySeconds },
	Template: func(rc *corev1.ReplicationController) (*corev1.PodTemplateSpec, error) {
		if rc.Spec.Template == nil {
			return nil, errors.New("spec.template is not set")
		}
		return rc.Spec.Template, nil
	},
	Status: func(rc *corev1.ReplicationController) Status {
		return Status{
			Replicas: rc.Status.Replicas, FullyLabeledReplicas: rc.Status.FullyLabeledReplicas,
			ReadyReplicas: rc.Status.ReadyReplicas, AvailableReplicas: rc.Status.AvailableReplicas,
			ObservedGeneration: rc.Status.ObservedGeneration,
		}
	},
	SetStatus: func(rc *corev1.ReplicationController, s Status) {
		rc.Status.Replicas = s.Replicas
		rc.Status.FullyLabeledReplicas = s.FullyLabeledReplicas
		rc.Status.ReadyReplicas = s.ReadyReplicas
		rc.Status.AvailableReplicas = s.AvailableReplicas
		rc.Status.ObservedGeneration = s.ObservedGeneration
	},
}

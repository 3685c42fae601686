package strategies

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

// Workloads: the pod-template controllers of apps/v1 and core/v1's
// ReplicationController.

const defaultRevisionHistoryLimit = 10

func validateTemplate(t *corev1.PodTemplateSpec, path *field.Path) field.ErrorList {
	errs := fastvalidation.ValidateLabels(t.Labels, path.Child("metadata", "labels"))
	return append(errs, ValidatePodSpec(&t.Spec, path.Child("spec"))...)
}

// validateLongRunningTemplate checks the template of a controller whose pods
// run forever.
func validateLongRunningTemplate(kind string, t *corev1.PodTemplateSpec, path *field.Path) field.ErrorList {
	errs := validateTemplate(t, path)
	if t.Spec.RestartPolicy != corev1.RestartPolicyAlways {
		errs = append(errs, field.NotSupported(path.Child("spec", "restartPolicy"), t.Spec.RestartPolicy, []corev1.RestartPolicy{corev1.RestartPolicyAlways}))
	}
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Forbidden(path.Child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in "+kind+" is not Supported"))
	}
	return errs
}

func validateSelectorUpdate(path *field.Path, selector, old any) field.ErrorList {
	return immutable(path.Child("selector"), selector, old)
}

type deploymentStrategy struct{ withStatus }

func (deploymentStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.Deployment).Spec
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	s := &spec.Strategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if s.Type == appsv1.RollingUpdateDeploymentStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDeployment{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = new(intstr.FromString("25%"))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = new(intstr.FromString("25%"))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(defaultRevisionHistoryLimit))
	}
	if spec.ProgressDeadlineSeconds == nil {
		spec.ProgressDeadlineSeconds = new(int32(600))
	}
	DefaultPodSpec(&spec.Template.Spec)
}

func (deploymentStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*appsv1.Deployment).Spec
	path := field.NewPath("spec")
	errs := nonNegativePtr(path.Child("replicas"), spec.Replicas)
	errs = append(errs, selectorForTemplate("deployment", spec.Selector, spec.Template.Labels, path)...)
	errs = append(errs, validateLongRunningTemplate("Deployment", &spec.Template, path.Child("template"))...)
	errs = append(errs, nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, nonNegativePtr(path.Child("revisionHistoryLimit"), spec.RevisionHistoryLimit)...)
	if d := spec.ProgressDeadlineSeconds; d != nil {
		errs = append(errs, nonNegative(path.Child("progressDeadlineSeconds"), *d)...)
		if *d <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(path.Child("progressDeadlineSeconds"), *d, "must be greater than minReadySeconds"))
		}
	}
	sp := path.Child("strategy")
	switch s := spec.Strategy; s.Type {
	case appsv1.RecreateDeploymentStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Forbidden(sp.Child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'"))
		}
	case appsv1.RollingUpdateDeploymentStrategyType:
		if s.RollingUpdate == nil {
			errs = append(errs, field.Required(sp.Child("rollingUpdate"), "this should be defaulted and never be nil"))
			break
		}
		rp, ru := sp.Child("rollingUpdate"), s.RollingUpdate
		errs = append(errs, intOrPercent(rp.Child("maxUnavailable"), ru.MaxUnavailable)...)
		errs = append(errs, intOrPercent(rp.Child("maxSurge"), ru.MaxSurge)...)
		if isZero(ru.MaxUnavailable) && isZero(ru.MaxSurge) {
			errs = append(errs, field.Invalid(rp.Child("maxUnavailable"), ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
		}
		errs = append(errs, notOver100Percent(rp.Child("maxUnavailable"), ru.MaxUnavailable)...)
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Type, []appsv1.DeploymentStrategyType{
			appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}))
	}
	return errs
}

func (s deploymentStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, validateSelectorUpdate(field.NewPath("spec"),
		obj.(*appsv1.Deployment).Spec.Selector, old.(*appsv1.Deployment).Spec.Selector)...)
}

// SpecChanged also counts annotation changes, which deployments copy to
// their replica sets.
func (s deploymentStrategy) SpecChanged(obj, old runtime.Object) bool {
	return s.withStatus.SpecChanged(obj, old) ||
		!equality.Semantic.DeepEqual(obj.(*appsv1.Deployment).Annotations, old.(*appsv1.Deployment).Annotations)
}

type replicaSetStrategy struct{ withStatus }

func (replicaSetStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.ReplicaSet).Spec
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	DefaultPodSpec(&spec.Template.Spec)
}

func (replicaSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*appsv1.ReplicaSet).Spec
	path := field.NewPath("spec")
	errs := nonNegativePtr(path.Child("replicas"), spec.Replicas)
	errs = append(errs, nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, selectorForTemplate("replicaset", spec.Selector, spec.Template.Labels, path)...)
	return append(errs, validateLongRunningTemplate("ReplicaSet", &spec.Template, path.Child("template"))...)
}

func (s replicaSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, validateSelectorUpdate(field.NewPath("spec"),
		obj.(*appsv1.ReplicaSet).Spec.Selector, old.(*appsv1.ReplicaSet).Spec.Selector)...)
}

func (replicaSetStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*appsv1.ReplicaSet).Status.Replicas))}
}

type replicationControllerStrategy struct{ withStatus }

func (replicationControllerStrategy) Default(obj runtime.Object) {
	rc := obj.(*corev1.ReplicationController)
	if t := rc.Spec.Template; t != nil {
		if len(t.Labels) > 0 {
			if len(rc.Spec.Selector) == 0 {
				rc.Spec.Selector = t.Labels
			}
			if len(rc.Labels) == 0 {
				rc.Labels = t.Labels
			}
		}
		DefaultPodSpec(&t.Spec)
	}
	if rc.Spec.Replicas == nil {
		rc.Spec.Replicas = new(int32(1))
	}
}

func (replicationControllerStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*corev1.ReplicationController).Spec
	path := field.NewPath("spec")
	errs := nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)
	if len(spec.Selector) == 0 {
		errs = append(errs, field.Required(path.Child("selector"), ""))
	}
	errs = append(errs, fastvalidation.ValidateLabels(spec.Selector, path.Child("selector"))...)
	errs = append(errs, nonNegativePtr(path.Child("replicas"), spec.Replicas)...)
	tp := path.Child("template")
	if spec.Template == nil {
		return append(errs, field.Required(tp, ""))
	}
	if sel := labels.SelectorFromSet(spec.Selector); !sel.Empty() && !sel.Matches(labels.Set(spec.Template.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), spec.Template.Labels, "`selector` does not match template `labels`"))
	}
	return append(errs, validateLongRunningTemplate("ReplicationController", spec.Template, tp)...)
}

func (s replicationControllerStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

func (replicationControllerStrategy) Fields(obj runtime.Object) fields.Set {
	return fields.Set{"status.replicas": strconv.Itoa(int(obj.(*corev1.ReplicationController).Status.Replicas))}
}

type daemonSetStrategy struct{ withStatus }

func (daemonSetStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.DaemonSet).Spec
	s := &spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateDaemonSetStrategyType
	}
	if s.Type == appsv1.RollingUpdateDaemonSetStrategyType {
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateDaemonSet{}
		}
		if s.RollingUpdate.MaxUnavailable == nil {
			s.RollingUpdate.MaxUnavailable = new(intstr.FromInt32(1))
		}
		if s.RollingUpdate.MaxSurge == nil {
			s.RollingUpdate.MaxSurge = new(intstr.FromInt32(0))
		}
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(defaultRevisionHistoryLimit))
	}
	DefaultPodSpec(&spec.Template.Spec)
}

func (daemonSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*appsv1.DaemonSet).Spec
	path := field.NewPath("spec")
	errs := selectorForTemplate("daemonset", spec.Selector, spec.Template.Labels, path)
	errs = append(errs, validateLongRunningTemplate("DaemonSet", &spec.Template, path.Child("template"))...)
	errs = append(errs, nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, nonNegativePtr(path.Child("revisionHistoryLimit"), spec.RevisionHistoryLimit)...)
	sp := path.Child("updateStrategy")
	switch s := spec.UpdateStrategy; s.Type {
	case appsv1.OnDeleteDaemonSetStrategyType:
	case appsv1.RollingUpdateDaemonSetStrategyType:
		rp, ru := sp.Child("rollingUpdate"), s.RollingUpdate
		if ru == nil {
			errs = append(errs, field.Required(rp, ""))
			break
		}
		for _, f := range []struct {
			name string
			v    *intstr.IntOrString
		}{{"maxUnavailable", ru.MaxUnavailable}, {"maxSurge", ru.MaxSurge}} {
			errs = append(errs, intOrPercent(rp.Child(f.name), f.v)...)
			errs = append(errs, notOver100Percent(rp.Child(f.name), f.v)...)
		}
		switch unavailable, surge := !isZero(ru.MaxUnavailable), !isZero(ru.MaxSurge); {
		case unavailable && surge:
			errs = append(errs, field.Invalid(rp.Child("maxSurge"), ru.MaxSurge, "may not be set when maxUnavailable is non-zero"))
		case !unavailable && !surge:
			errs = append(errs, field.Required(rp.Child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
		}
	default:
		errs = append(errs, field.NotSupported(sp.Child("type"), s.Type, []appsv1.DaemonSetUpdateStrategyType{
			appsv1.OnDeleteDaemonSetStrategyType, appsv1.RollingUpdateDaemonSetStrategyType}))
	}
	return errs
}

func (s daemonSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, validateSelectorUpdate(field.NewPath("spec"),
		obj.(*appsv1.DaemonSet).Spec.Selector, old.(*appsv1.DaemonSet).Spec.Selector)...)
}

type statefulSetStrategy struct{ withStatus }

func (statefulSetStrategy) Default(obj runtime.Object) {
	spec := &obj.(*appsv1.StatefulSet).Spec
	if spec.PodManagementPolicy == "" {
		spec.PodManagementPolicy = appsv1.OrderedReadyPodManagement
	}
	s := &spec.UpdateStrategy
	if s.Type == "" {
		s.Type = appsv1.RollingUpdateStatefulSetStrategyType
		if s.RollingUpdate == nil {
			s.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{}
		}
	}
	if s.Type == appsv1.RollingUpdateStatefulSetStrategyType && s.RollingUpdate != nil && s.RollingUpdate.Partition == nil {
		s.RollingUpdate.Partition = new(int32(0))
	}
	if spec.PersistentVolumeClaimRetentionPolicy == nil {
		spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{}
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenDeleted == "" {
		p.WhenDeleted = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if p := spec.PersistentVolumeClaimRetentionPolicy; p.WhenScaled == "" {
		p.WhenScaled = appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	}
	if spec.Replicas == nil {
		spec.Replicas = new(int32(1))
	}
	if spec.RevisionHistoryLimit == nil {
		spec.RevisionHistoryLimit = new(int32(defaultRevisionHistoryLimit))
	}
	DefaultPodSpec(&spec.Template.Spec)
	for i := range spec.VolumeClaimTemplates {
		pvc := &spec.VolumeClaimTemplates[i]
		defaultPVCSpec(&pvc.Spec)
		if pvc.Status.Phase == "" {
			pvc.Status.Phase = corev1.ClaimPending
		}
	}
}

func (statefulSetStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*appsv1.StatefulSet).Spec
	path := field.NewPath("spec")
	errs := oneOf(path.Child("podManagementPolicy"), spec.PodManagementPolicy,
		appsv1.OrderedReadyPodManagement, appsv1.ParallelPodManagement)
	sp := path.Child("updateStrategy")
	switch s := spec.UpdateStrategy; s.Type {
	case "":
		errs = append(errs, field.Required(sp, ""))
	case appsv1.OnDeleteStatefulSetStrategyType:
		if s.RollingUpdate != nil {
			errs = append(errs, field.Invalid(sp.Child("rollingUpdate"), s.RollingUpdate,
				fmt.Sprintf("only allowed for updateStrategy '%s'", appsv1.RollingUpdateStatefulSetStrategyType)))
		}
	case appsv1.RollingUpdateStatefulSetStrategyType:
		if ru := s.RollingUpdate; ru != nil {
			errs = append(errs, nonNegativePtr(sp.Child("rollingUpdate", "partition"), ru.Partition)...)
			errs = append(errs, intOrPercent(sp.Child("rollingUpdate", "maxUnavailable"), ru.MaxUnavailable)...)
		}
	default:
		errs = append(errs, field.Invalid(sp, s, fmt.Sprintf("must be '%s' or '%s'",
			appsv1.RollingUpdateStatefulSetStrategyType, appsv1.OnDeleteStatefulSetStrategyType)))
	}
	errs = append(errs, nonNegativePtr(path.Child("replicas"), spec.Replicas)...)
	errs = append(errs, nonNegative(path.Child("minReadySeconds"), spec.MinReadySeconds)...)
	errs = append(errs, nonNegativePtr(path.Child("revisionHistoryLimit"), spec.RevisionHistoryLimit)...)
	errs = append(errs, selectorForTemplate("statefulset", spec.Selector, spec.Template.Labels, path)...)
	errs = append(errs, validateLongRunningTemplate("StatefulSet", &spec.Template, path.Child("template"))...)
	for i, pvc := range spec.VolumeClaimTemplates {
		errs = append(errs, required(path.Child("volumeClaimTemplates").Index(i).Child("metadata", "name"), pvc.Name, fastvalidation.IsDNS1123Label)...)
	}
	return errs
}

const statefulSetUpdateForbiddenMsg = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', " +
	"'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"

func (s statefulSetStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	spec, oldSpec := obj.(*appsv1.StatefulSet).Spec.DeepCopy(), &old.(*appsv1.StatefulSet).Spec
	spec.Replicas, spec.Ordinals, spec.Template = oldSpec.Replicas, oldSpec.Ordinals, oldSpec.Template
	spec.UpdateStrategy, spec.RevisionHistoryLimit = oldSpec.UpdateStrategy, oldSpec.RevisionHistoryLimit
	spec.PersistentVolumeClaimRetentionPolicy, spec.MinReadySeconds = oldSpec.PersistentVolumeClaimRetentionPolicy, oldSpec.MinReadySeconds
	if !equality.Semantic.DeepEqual(spec, oldSpec) {
		errs = append(errs, field.Forbidden(field.NewPath("spec"), statefulSetUpdateForbiddenMsg))
	}
	return errs
}

type controllerRevisionStrategy struct{ base }

func (controllerRevisionStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	return nonNegative(field.NewPath("revision"), obj.(*appsv1.ControllerRevision).Revision)
}

func (s controllerRevisionStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	errs := s.Validate(ctx, obj)
	return append(errs, immutable(field.NewPath("data"),
		obj.(*appsv1.ControllerRevision).Data, old.(*appsv1.ControllerRevision).Data)...)
}

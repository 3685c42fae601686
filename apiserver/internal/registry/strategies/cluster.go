package strategies

import (
	"context"
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fastvalidation "github.com/coxswain/coxswain/apiserver/internal/registry/validation"
)

// Autoscaling, coordination, policy and scheduling kinds.

type hpaStrategy struct{ withStatus }

// defaultCPUUtilization is the target of an autoscaler without metrics.
const defaultCPUUtilization = 80

func (hpaStrategy) Default(obj runtime.Object) {
	spec := &obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec
	if spec.MinReplicas == nil {
		spec.MinReplicas = new(int32(1))
	}
	if len(spec.Metrics) == 0 {
		spec.Metrics = []autoscalingv2.MetricSpec{{
			Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{
					Type:               autoscalingv2.UtilizationMetricType,
					AverageUtilization: new(int32(defaultCPUUtilization)),
				},
			},
		}}
	}
	if b := spec.Behavior; b != nil {
		b.ScaleUp = defaultScalingRules(b.ScaleUp, new(int32(0)),
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PodsScalingPolicy, Value: 4, PeriodSeconds: 15},
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15})
		b.ScaleDown = defaultScalingRules(b.ScaleDown, nil,
			autoscalingv2.HPAScalingPolicy{Type: autoscalingv2.PercentScalingPolicy, Value: 100, PeriodSeconds: 15})
	}
}

func defaultScalingRules(r *autoscalingv2.HPAScalingRules, window *int32, policies ...autoscalingv2.HPAScalingPolicy) *autoscalingv2.HPAScalingRules {
	if r == nil {
		r = &autoscalingv2.HPAScalingRules{}
	}
	if r.StabilizationWindowSeconds == nil {
		r.StabilizationWindowSeconds = window
	}
	if r.SelectPolicy == nil {
		r.SelectPolicy = new(autoscalingv2.MaxChangePolicySelect)
	}
	if r.Policies == nil {
		r.Policies = policies
	}
	return r
}

func (hpaStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*autoscalingv2.HorizontalPodAutoscaler).Spec
	p := field.NewPath("spec")
	ref := p.Child("scaleTargetRef")
	errs := required(ref.Child("kind"), spec.ScaleTargetRef.Kind, func(s string) []string { return path.ValidatePathSegmentName(s, false) })
	errs = append(errs, required(ref.Child("name"), spec.ScaleTargetRef.Name, func(s string) []string { return path.ValidatePathSegmentName(s, false) })...)
	if spec.MinReplicas != nil && *spec.MinReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("minReplicas"), *spec.MinReplicas, "must be greater than or equal to 1"))
	}
	if spec.MaxReplicas < 1 {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than 0"))
	}
	if spec.MinReplicas != nil && spec.MaxReplicas < *spec.MinReplicas {
		errs = append(errs, field.Invalid(p.Child("maxReplicas"), spec.MaxReplicas, "must be greater than or equal to `minReplicas`"))
	}
	for i, m := range spec.Metrics {
		errs = append(errs, oneOf(p.Child("metrics").Index(i).Child("type"), m.Type, autoscalingv2.ObjectMetricSourceType,
			autoscalingv2.PodsMetricSourceType, autoscalingv2.ResourceMetricSourceType,
			autoscalingv2.ContainerResourceMetricSourceType, autoscalingv2.ExternalMetricSourceType)...)
	}
	return errs
}

func (s hpaStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

// leaseStrategy has nothing beyond metadata to check.
type leaseStrategy struct{ base }

type pdbStrategy struct{ withStatus }

func (pdbStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	spec := &obj.(*policyv1.PodDisruptionBudget).Spec
	p := field.NewPath("spec")
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(p, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	errs = append(errs, intOrPercent(p.Child("minAvailable"), spec.MinAvailable)...)
	errs = append(errs, notOver100Percent(p.Child("minAvailable"), spec.MinAvailable)...)
	errs = append(errs, intOrPercent(p.Child("maxUnavailable"), spec.MaxUnavailable)...)
	errs = append(errs, notOver100Percent(p.Child("maxUnavailable"), spec.MaxUnavailable)...)
	if spec.Selector != nil {
		errs = append(errs, fastvalidation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	}
	if spec.UnhealthyPodEvictionPolicy != nil {
		errs = append(errs, oneOf(p.Child("unhealthyPodEvictionPolicy"), *spec.UnhealthyPodEvictionPolicy, policyv1.IfHealthyBudget, policyv1.AlwaysAllow)...)
	}
	return errs
}

func (s pdbStrategy) ValidateUpdate(ctx context.Context, obj, _ runtime.Object) field.ErrorList {
	return s.Validate(ctx, obj)
}

type priorityClassStrategy struct{ base }

const (
	systemPriorityClassPrefix    = "system-"
	highestUserDefinablePriority = 1000000000
)

// systemPriorityClasses are the only classes whose names may start with
// "system-", with their values.
var systemPriorityClasses = map[string]int32{
	"system-node-critical":    2000001000,
	"system-cluster-critical": 2000000000,
}

func (priorityClassStrategy) Default(obj runtime.Object) {
	if pc := obj.(*schedulingv1.PriorityClass); pc.PreemptionPolicy == nil {
		pc.PreemptionPolicy = new(corev1.PreemptLowerPriority)
	}
}

func (priorityClassStrategy) Validate(_ context.Context, obj runtime.Object) field.ErrorList {
	pc := obj.(*schedulingv1.PriorityClass)
	var errs field.ErrorList
	if strings.HasPrefix(pc.Name, systemPriorityClassPrefix) {
		if err := knownSystemPriorityClass(pc); err != nil {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+systemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err.Error()))
		}
	} else if pc.Value > highestUserDefinablePriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", highestUserDefinablePriority)))
	}
	if pc.PreemptionPolicy != nil {
		errs = append(errs, oneOf(field.NewPath("preemptionPolicy"), *pc.PreemptionPolicy, corev1.PreemptLowerPriority, corev1.PreemptNever)...)
	}
	return errs
}

func knownSystemPriorityClass(pc *schedulingv1.PriorityClass) error {
	value, ok := systemPriorityClasses[pc.Name]
	switch {
	case !ok:
		return fmt.Errorf("%v is not a known system priority class", pc.Name)
	case value != pc.Value:
		return fmt.Errorf("value of %v PriorityClass must be %v", pc.Name, value)
	case pc.GlobalDefault:
		return fmt.Errorf("globalDefault of %v PriorityClass must be false", pc.Name)
	}
	return nil
}

func (s priorityClassStrategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	pc, oldPC := obj.(*schedulingv1.PriorityClass), old.(*schedulingv1.PriorityClass)
	errs := s.Validate(ctx, obj)
	if pc.Value != oldPC.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(errs, immutable(field.NewPath("preemptionPolicy"), pc.PreemptionPolicy, oldPC.PreemptionPolicy)...)
}
